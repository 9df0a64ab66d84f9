package main

import (
	"fmt"

	httptransport "github.com/agentd/agentd/transport/http"
)

// subArgs are a subcommand's arguments: --name value flags and positional
// arguments, in the form the users and privado commands take.
type subArgs struct {
	cmd   string // "users list", for errors
	flags map[string]string
	pos   []string
}

// parseSubArgs reads rest[1:] of the command cmd (rest[0] is the
// subcommand); valued are the flags that take a value ("--limit").
func parseSubArgs(cmd string, rest []string, valued ...string) (subArgs, error) {
	a := subArgs{cmd: cmd + " " + rest[0], flags: map[string]string{}}
	isValued := map[string]bool{}
	for _, v := range valued {
		isValued[v] = true
	}
	for i := 1; i < len(rest); i++ {
		if f := rest[i]; isValued[f] {
			if i+1 >= len(rest) {
				return a, fmt.Errorf("%s: %s needs a value", a.cmd, f)
			}
			a.flags[f[2:]] = rest[i+1]
			i++
		} else {
			a.pos = append(a.pos, f)
		}
	}
	return a, nil
}

// one is the single positional argument, named what in the error.
func (a subArgs) one(what string) (string, error) {
	if len(a.pos) != 1 {
		return "", fmt.Errorf("%s: give one %s", a.cmd, what)
	}
	return a.pos[0], nil
}

// page is the page --after and --limit ask for.
func (a subArgs) page() (httptransport.PageRequest, error) {
	p := httptransport.PageRequest{After: a.flags["after"]}
	if v := a.flags["limit"]; v != "" {
		if _, err := fmt.Sscan(v, &p.Limit); err != nil || p.Limit < 1 {
			return p, fmt.Errorf("%s: --limit must be a positive number", a.cmd)
		}
	}
	return p, nil
}
