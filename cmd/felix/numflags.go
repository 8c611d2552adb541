package main

import (
	"fmt"
	"slices"

	"github.com/spf13/pflag"
)

// refuseNegative returns an error naming the first numeric flag of fs
// (int, int64, duration or a list of ints) holding a negative value: as
// --flag when fromArgs has it (given on the command line), else as its
// FELIX_* variable.
func refuseNegative(fs *pflag.FlagSet, fromArgs map[string]bool) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || !f.Changed || !negativeValue(fs, f) {
			return
		}
		if fromArgs[f.Name] {
			err = fmt.Errorf("--%s %s: must not be negative", f.Name, f.Value)
		} else {
			err = fmt.Errorf("%s=%s (--%s): must not be negative", flagEnv(f), f.Value, f.Name)
		}
	})
	return err
}

// negativeValue reports whether f is numeric and holds a negative value
// (one of a list's is enough).
func negativeValue(fs *pflag.FlagSet, f *pflag.Flag) bool {
	switch f.Value.Type() {
	case "int":
		v, _ := fs.GetInt(f.Name)
		return v < 0
	case "int64":
		v, _ := fs.GetInt64(f.Name)
		return v < 0
	case "duration":
		v, _ := fs.GetDuration(f.Name)
		return v < 0
	case "intSlice":
		v, _ := fs.GetIntSlice(f.Name)
		return slices.ContainsFunc(v, func(n int) bool { return n < 0 })
	}
	return false
}

// refuseNegativeFlags returns an error naming the first of the flags of fs
// named in names that holds a negative value (see negativeValue). The
// commands that wait for messages call it before they dial: a negative
// --count, --prefetch or --idle-exit was taken as 0 (no limit, the
// broker's default, never) without a word.
func refuseNegativeFlags(fs *pflag.FlagSet, names ...string) error {
	for _, name := range names {
		if f := fs.Lookup(name); f != nil && negativeValue(fs, f) {
			return fmt.Errorf("--%s %s: must not be negative", f.Name, f.Value)
		}
	}
	return nil
}
