package main

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func readOperationsDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection is the text of the "## title" section.
func docSection(t *testing.T, doc, title string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("operations.md has no section %q", title)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

var flagRe = regexp.MustCompile("`--([a-z0-9-]+)")

// flagNames are the names of fs's flags but help.
func flagNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			names = append(names, f.Name)
		}
	})
	sort.Strings(names)
	return names
}

// compareNames reports names the doc lists that do not exist and real
// names it does not list.
func compareNames(t *testing.T, what string, documented, real []string) {
	t.Helper()
	for _, n := range documented {
		if !slices.Contains(real, n) {
			t.Errorf("operations.md documents %s --%s, which does not exist", what, n)
		}
	}
	for _, n := range real {
		if !slices.Contains(documented, n) {
			t.Errorf("%s --%s is not documented in operations.md", what, n)
		}
	}
}

// Every flag of `felix serve` is in the flag table of operations.md and
// every flag there exists; the same for the client commands' shared flags.
func TestOperationsDocListsEveryServeFlag(t *testing.T) {
	doc := readOperationsDoc(t)
	conf := docSection(t, doc, "Configuration")
	var table []string
	for _, line := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range flagRe.FindAllStringSubmatch(first, -1) {
			table = append(table, m[1])
		}
	}
	compareNames(t, "serve flag", table, flagNames(newServeCmd().Flags()))

	// The shared flags are named in the first paragraph of "Client
	// commands".
	_, para, _ := strings.Cut(docSection(t, doc, "Client commands"), "They share\nthe connection flags")
	para, _, _ = strings.Cut(para, "\n\n")
	var documented []string
	for _, m := range flagRe.FindAllStringSubmatch(para, -1) {
		if !slices.Contains(documented, m[1]) {
			documented = append(documented, m[1])
		}
	}
	var cf clientFlags
	cmd := &cobra.Command{Use: "x"}
	cf.register(cmd)
	compareNames(t, "client flag", documented, flagNames(cmd.PersistentFlags()))
}

// The reference broker's YAML keys and environment variables the doc
// lists are exactly the accepted ones, and every FELIX_* variable the doc
// names is a real one.
func TestOperationsDocReferenceNames(t *testing.T) {
	conf := docSection(t, readOperationsDoc(t), "Configuration")
	for key := range referenceKeys {
		if !strings.Contains(conf, "`"+key+"`") {
			t.Errorf("reference key %s is not documented", key)
		}
	}
	for name := range referenceEnv {
		if !strings.Contains(conf, "`"+name+"`") {
			t.Errorf("reference variable %s is not documented", name)
		}
	}
	real := map[string]bool{}
	eachFlag(newRootCmd(), func(f *pflag.Flag) {
		if readsEnv(f) {
			real[flagEnv(f)] = true
		}
	})
	for name := range referenceEnv {
		real[name] = true
	}
	for _, m := range regexp.MustCompile("`(FELIX_[A-Z0-9_]+)`").FindAllStringSubmatch(conf, -1) {
		if !real[m[1]] {
			t.Errorf("operations.md names %s, which felix does not read", m[1])
		}
	}
}

// Every flag docs/coming-from.md names exists on some felix command, so
// the page a newcomer follows does not drift from the CLI.
func TestComingFromDocFlagsExist(t *testing.T) {
	b, err := os.ReadFile("../../docs/coming-from.md")
	if err != nil {
		t.Fatal(err)
	}
	real := map[string]bool{}
	eachFlag(newRootCmd(), func(f *pflag.Flag) { real[f.Name] = true })
	named := flagRe.FindAllStringSubmatch(string(b), -1)
	if len(named) < 10 {
		t.Fatalf("found %d flags in coming-from.md; the pattern no longer matches the page", len(named))
	}
	for _, m := range named {
		if !real[m[1]] {
			t.Errorf("coming-from.md names --%s, which no felix command has", m[1])
		}
	}
}
