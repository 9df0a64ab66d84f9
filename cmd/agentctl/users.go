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
	args, err := parseSubArgs("users", rest, "--state", "--email", "--after", "--limit", "--name", "--reference")
	if err != nil {
		return nil, err
	}
	flags, one, page := args.flags, args.one, args.page
	switch rest[0] {
	case "list":
		p, err := page()
		if err != nil {
			return nil, err
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
