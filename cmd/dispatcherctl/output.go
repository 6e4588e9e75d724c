package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
	"sigs.k8s.io/yaml"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

const (
	red    = "31"
	green  = "32"
	yellow = "33"
	bold   = "1"
)

// paint colours s when colour is on (a terminal, or --color always).
func (e *env) paint(code, s string) string {
	if !e.colour || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// phaseColour is the colour of a phase or a backend state.
func phaseColour(s string) string {
	switch s {
	case "Running", "Succeeded", "up", "running":
		return green
	case "Failed", "down", "misconfigured", "Unknown", "Error":
		return red
	case "Pending", "degraded", "waiting", "Waiting":
		return yellow
	}
	return ""
}

func (e *env) phase(s string) string {
	if c := phaseColour(s); c != "" {
		return e.paint(c, s)
	}
	return s
}

// table writes aligned columns, three spaces apart. Colour codes are added after the padding, so that they
// take no width.
type table struct {
	e    *env
	rows [][]string
	// colour of a cell, by column: a function of the raw cell
	colour map[int]func(string) string
	widths []int
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write prints every row and remembers the widths, which later rows printed with line keep.
func (t *table) write(w io.Writer) {
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(t.widths) {
				t.widths = append(t.widths, 0)
			}
			t.widths[i] = max(t.widths[i], len(c))
		}
	}
	for ri, r := range t.rows {
		fmt.Fprintln(w, t.line(r, ri > 0))
	}
}

// line is one row padded to the widths seen so far.
func (t *table) line(r []string, colour bool) string {
	var sb strings.Builder
	for i, c := range r {
		cell := c
		if f := t.colour[i]; f != nil && colour {
			cell = f(c)
		}
		sb.WriteString(cell)
		if i < len(r)-1 {
			w := len(c)
			if i < len(t.widths) {
				w = max(w, t.widths[i])
			}
			sb.WriteString(strings.Repeat(" ", w-len(c)+3))
		}
	}
	return strings.TrimRight(sb.String(), " ")
}

// printAs writes v as JSON (indented) or YAML.
func printAs(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		raw, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(raw)
		return err
	}
	return fmt.Errorf("unknown output format %q", format)
}

func checkOutput(o string, allowed ...string) error {
	if o == "" {
		return nil
	}
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return usagef("-o is one of %s, not %q", strings.Join(allowed, ", "), o)
}
