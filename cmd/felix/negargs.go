package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// allowNegativeArgs lets cmd take a negative number as an argument, as
// `felix cache incr hits -3` or `felix cache put t -1`: pflag reads a
// "-3" as the shorthand flags -3 and fails ("unknown shorthand flag"),
// so a user had to write `-- -3`, which no Redis user expects.
//
// An argument that is a dash followed by a digit (-3, -1.5, -5m) cannot
// be a flag (no flag of felix has a digit for its shorthand), so it is
// taken as a positional argument, in its place among the others, unless
// it follows a flag that takes a value (--ttl -5s, -n -1): it is that
// flag's value then, as before. Every other argument, `--` and the flags
// after the numbers (`felix cache incr hits -3 --ttl 1m`) are parsed by
// cobra and pflag as usual; -h/--help shows the help.
//
// cobra is told not to parse cmd's flags (DisableFlagParsing) and they are
// parsed here, in cmd's argument validator, which cobra calls before any
// hook (the FELIX_* variables of clientCmd come after, as they do for the
// other commands) and before RunE; RunE is given the positional
// arguments, with the negative numbers in their places.
func allowNegativeArgs(cmd *cobra.Command) {
	validate, run := cmd.Args, cmd.RunE
	if validate == nil {
		validate = cobra.ArbitraryArgs
	}
	cmd.DisableFlagParsing = true
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[negativeArgsAnnotation] = "true"
	var positional []string
	cmd.Args = func(c *cobra.Command, raw []string) error {
		args, err := parseWithNegatives(c, raw)
		if err != nil {
			return err
		}
		positional = args
		return validate(c, args)
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		return run(c, positional)
	}
}

// negativeArgsAnnotation marks the commands of allowNegativeArgs, for
// completeNegativeArgs.
const negativeArgsAnnotation = "felix-negative-args"

// completeNegativeArgs is the root command's PersistentPreRunE, which
// cobra runs before its hidden completion command (`felix __complete
// ARGS... WORD`, what the shell scripts of `felix completion` call). A
// command of allowNegativeArgs does not let cobra parse its flags, and
// cobra's completion then takes every flag for unset: it offered the
// flags already given again (`felix cache incr k --tenant t --te` offered
// --tenant) and never --help or -h. For a completion of such a command,
// the command parses its flags again as any other does, and the negative
// numbers among ARGS are handed to the completion as placeholders, the
// positional arguments they are (as parseWithNegatives does), so that
// pflag does not take them for unknown shorthand flags.
func completeNegativeArgs(c *cobra.Command, args []string) error {
	if (c.Name() != cobra.ShellCompRequestCmd && c.Name() != cobra.ShellCompNoDescRequestCmd) || len(args) == 0 {
		return nil
	}
	words := args[:len(args)-1] // the last is the word being completed
	target, _, err := c.Root().Find(words)
	if err != nil || target.Annotations[negativeArgsAnnotation] == "" {
		return nil
	}
	target.InheritedFlags() // as parseWithNegatives
	swapped, _ := holdNegatives(target.Flags(), words)
	target.DisableFlagParsing = false
	complete := c.Run
	c.Run = func(c *cobra.Command, _ []string) {
		complete(c, append(swapped, args[len(args)-1]))
	}
	return nil
}

// holdNegatives returns raw with each negative number that is a
// positional argument (see allowNegativeArgs) swapped for a placeholder
// no flag reads, and what each placeholder stands for.
func holdNegatives(fs *pflag.FlagSet, raw []string) ([]string, map[string]string) {
	held := map[string]string{}
	swapped := make([]string, len(raw))
	for i, a := range raw {
		swapped[i] = a
		if a == "--" {
			copy(swapped[i:], raw[i:]) // the rest is positional already
			break
		}
		if isNegativeNumber(a) && (i == 0 || !takesValue(fs, raw[i-1])) {
			p := fmt.Sprintf("\x00felix-arg-%d", i)
			held[p] = a
			swapped[i] = p
		}
	}
	return swapped, held
}

// parseWithNegatives parses c's flags in raw, as cobra would, and returns
// the positional arguments, negative numbers among them in their places
// (see allowNegativeArgs). Help asked for is pflag.ErrHelp, which cobra
// answers with the help.
func parseWithNegatives(c *cobra.Command, raw []string) ([]string, error) {
	// The inherited flags (--addr, --cache, ...) join c.Flags(), as
	// cobra's own parse does first.
	c.InheritedFlags()
	fs := c.Flags()
	// Each negative number is swapped for a placeholder no flag reads,
	// then put back among the positional arguments.
	swapped, held := holdNegatives(fs, raw)
	c.DisableFlagParsing = false
	err := c.ParseFlags(swapped)
	c.DisableFlagParsing = true
	if err != nil {
		return nil, c.FlagErrorFunc()(c, err)
	}
	if help, _ := fs.GetBool("help"); help {
		return nil, pflag.ErrHelp
	}
	args := fs.Args()
	for i, a := range args {
		if orig, ok := held[a]; ok {
			args[i] = orig
		}
	}
	return args, nil
}

// isNegativeNumber says whether a reads as a negative number (or
// duration): a dash, then a digit.
func isNegativeNumber(a string) bool {
	return len(a) >= 2 && a[0] == '-' && a[1] >= '0' && a[1] <= '9'
}

// takesValue says whether the argument a is a flag of fs that takes the
// next argument as its value: --name or a group of shorthands -xy whose
// last one needs a value (not --name=v, -xv, or a boolean).
func takesValue(fs *pflag.FlagSet, a string) bool {
	switch {
	case strings.HasPrefix(a, "--"):
		if len(a) == 2 || strings.Contains(a, "=") {
			return false
		}
		f := fs.Lookup(a[2:])
		return f != nil && f.NoOptDefVal == ""
	case strings.HasPrefix(a, "-") && len(a) > 1 && !strings.Contains(a, "="):
		for i := 1; i < len(a); i++ {
			f := fs.ShorthandLookup(a[i : i+1])
			if f == nil {
				return false
			}
			if f.NoOptDefVal == "" {
				// This shorthand takes a value: the rest of a, or the
				// next argument when it is the last.
				return i == len(a)-1
			}
		}
	}
	return false
}
