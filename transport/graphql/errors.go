package graphql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	gqlgen "github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/agentd/agentd/agent"
)

// Error codes in extensions.code.
const (
	CodeNotFound          = "NOT_FOUND"
	CodeBadUserInput      = "BAD_USER_INPUT"
	CodeInvalidState      = "INVALID_STATE"
	CodeUnsupportedFormat = "UNSUPPORTED_FORMAT"
	CodeForbidden         = "FORBIDDEN"
	CodeUnsupported       = "UNSUPPORTED"
	CodeInternal          = "INTERNAL"
	CodeUnauthenticated   = "UNAUTHENTICATED"
)

// classify maps an error of a resolver onto its extensions.code and the
// message the client may see. Internal errors get a generic message: their
// text may hold details that must not leave the process.
func classify(err error) (code, msg string) {
	var u unsupported
	switch {
	case errors.As(err, &u):
		return CodeUnsupported, u.Error()
	case agent.HasCode(err, agent.CodeNotFound):
		return CodeNotFound, agent.ErrorComment(err)
	case errors.Is(err, agent.ErrNotFound):
		return CodeNotFound, "not found"
	case agent.HasCode(err, agent.CodeMsgUnsupported):
		return CodeUnsupportedFormat, agent.ErrorComment(err)
	case agent.HasCode(err, agent.CodeMsg):
		return CodeBadUserInput, agent.ErrorComment(err)
	case agent.HasCode(err, agent.CodeConflict):
		return CodeInvalidState, agent.ErrorComment(err)
	case agent.HasCode(err, agent.CodeForbidden):
		return CodeForbidden, agent.ErrorComment(err)
	}
	return CodeInternal, "internal error"
}

// presenter turns resolver errors into GraphQL errors with
// extensions.code, logging the internal ones.
func presenter(log *slog.Logger) gqlgen.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gerr *gqlerror.Error
		if errors.As(err, &gerr) && gerr.Err == nil {
			// Made by gqlgen itself (argument coercion, a null in a
			// non-null field): the client's input or our schema contract.
			if gerr.Extensions == nil {
				gerr.Extensions = map[string]any{"code": CodeBadUserInput}
			}
			return gerr
		}
		if gerr != nil {
			err = gerr.Err
		}
		code, msg := classify(err)
		out := gqlerror.WrapPath(gqlgen.GetPath(ctx), err)
		out.Message = msg
		out.Extensions = map[string]any{"code": code}
		if code == CodeInternal {
			log.ErrorContext(ctx, "graphql: internal error", "path", out.Path.String(), "err", err)
		}
		return out
	}
}

// recoverer logs a resolver's panic with its stack and answers INTERNAL.
func recoverer(log *slog.Logger) gqlgen.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "graphql: panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return agent.Errorf(agent.CodeMe, "internal error")
	}
}
