package checkpoint

import "context"

type requesterKey struct{}

// WithRequester returns a context under which a Runner asks for approvals in
// the name of who (approval.Request.RequestedBy) instead of
// Options.RequestedBy: a server running deployments for several people
// passes the authenticated caller this way.
func WithRequester(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, requesterKey{}, who)
}

// requester is who asks for approvals under ctx, or def.
func requester(ctx context.Context, def string) string {
	if v, ok := ctx.Value(requesterKey{}).(string); ok && v != "" {
		return v
	}
	return def
}
