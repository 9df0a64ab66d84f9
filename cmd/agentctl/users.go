package main

import (
	"context"
	"fmt"

	httptransport "github.com/agentd/agentd/transport/http"
)

const usersUsage = `  users list [--state S] [--email PART] [--after ID] [--limit N]
                              list user accounts (S: unclaimed, confirmed, active, disabled)
  users get ID                show a user account (keys, what was checked, its did:key)
  users create EMAIL [--name N] [--reference R]
                              create an unclaimed account (a sign-up from EMAIL claims it)
  users disable ID            disable an account (final)
  users delete ID             delete an account
  users key-token ID          give an account a fresh key-upload token (key replacement)
`

// users runs the users subcommands over the admin API.
func (c *client) users(ctx context.Context, rest []string) (any, error) {
	if len(rest) == 0 {
		return nil, fmt.Errorf("users: missing subcommand (list, get, create, disable, delete, key-token)")
	}
	flags := map[string]string{}
	var pos []string
	for i := 1; i < len(rest); i++ {
		switch a := rest[i]; a {
		case "--state", "--email", "--after", "--limit", "--name", "--reference":
			if i+1 >= len(rest) {
				return nil, fmt.Errorf("users %s: %s needs a value", rest[0], a)
			}
			flags[a[2:]] = rest[i+1]
			i++
		default:
			pos = append(pos, a)
		}
	}
	one := func(what string) (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("users %s: give one %s", rest[0], what)
		}
		return pos[0], nil
	}
	switch rest[0] {
	case "list":
		p := httptransport.PageRequest{After: flags["after"]}
		if v := flags["limit"]; v != "" {
			if _, err := fmt.Sscan(v, &p.Limit); err != nil || p.Limit < 1 {
				return nil, fmt.Errorf("users list: --limit must be a positive number")
			}
		}
		return value(c.api.Users(ctx, flags["state"], flags["email"], p))
	case "get":
		id, err := one("account id")
		if err != nil {
			return nil, err
		}
		return value(c.api.User(ctx, id))
	case "create":
		email, err := one("mail address")
		if err != nil {
			return nil, err
		}
		return value(c.api.CreateUser(ctx, httptransport.CreateUserRequest{Email: email, Name: flags["name"], Reference: flags["reference"]}))
	case "disable":
		id, err := one("account id")
		if err != nil {
			return nil, err
		}
		return value(c.api.DisableUser(ctx, id))
	case "delete":
		id, err := one("account id")
		if err != nil {
			return nil, err
		}
		return nil, c.api.DeleteUser(ctx, id)
	case "key-token":
		id, err := one("account id")
		if err != nil {
			return nil, err
		}
		return value(c.api.IssueKeyUploadToken(ctx, id))
	}
	return nil, fmt.Errorf("users: unknown subcommand %q", rest[0])
}
