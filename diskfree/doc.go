// Package diskfree watches the free space of the file system that holds
// the broker's data directory and refuses new durable writes while it is
// below a limit, as RabbitMQ's disk alarm (disk_free_limit) does.
//
// A Guard polls the file system (statfs) once per Options.Interval, and
// more often once the free space is within a few limits of the floor, so
// a fast writer cannot run far past it between two looks. Check, called
// on the publish path, is one atomic load: nil while there is room, a
// *LowSpaceError while there is not. The broker refuses what Check
// refuses with its storage error ("storage write failed, publish not
// stored: …"), so clients see the same error as on a full disk, early
// enough that queue acks, group state, the control-plane store and other
// programs on the disk still have room. Writes that free space or cost
// almost none (acks, deletes) are not checked.
//
// The alarm clears by itself once the free space is back above the limit.
// Refusals are counted (Stats) and every change of state is logged.
package diskfree
