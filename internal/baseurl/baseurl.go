package baseurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Reasons a base URL is refused; the *Error of Parse matches them with errors.Is.
var (
	ErrSyntax      = errors.New("not a valid URL")
	ErrScheme      = errors.New("scheme must be http or https")
	ErrNoHost      = errors.New("no host")
	ErrCredentials = errors.New("must not carry credentials")
)

// Error is a refused base URL.
type Error struct {
	// URL is the refused URL without its user info ("" when it did not parse).
	URL string
	// Reason is one of the Err* values above.
	Reason error
	// Detail is the parser's explanation for ErrSyntax, "" otherwise.
	Detail string
}

// Error describes the refused URL without its credentials.
func (e *Error) Error() string {
	s := "base URL"
	if e.URL != "" {
		s += fmt.Sprintf(" %q", e.URL)
	}
	s += ": " + e.Reason.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Reason }

// Parse checks raw as the base URL of an HTTP API and returns it parsed,
// trailing slashes dropped: the scheme is http or https, there is a host and
// no user info (credentials go in a client's own settings, never in a URL
// that is logged and printed).
func Parse(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		// "10.0.0.1:8265" is the usual slip; say what is missing.
		e := &Error{Reason: ErrScheme}
		if !strings.Contains(raw, "@") {
			e.URL = raw
		}
		return nil, e
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		e := &Error{Reason: ErrSyntax}
		var ue *url.Error
		// The parser's message quotes the URL; keep only its reason, and
		// not even that when the URL may hold a password.
		if errors.As(err, &ue) && !strings.Contains(raw, "@") {
			e.Detail = ue.Err.Error()
		}
		return nil, e
	}
	shown := *u
	shown.User = nil
	e := &Error{URL: shown.String()}
	switch {
	case u.User != nil:
		e.Reason = ErrCredentials
	case u.Scheme != "http" && u.Scheme != "https":
		e.Reason = ErrScheme
	case u.Host == "":
		e.Reason = ErrNoHost
	default:
		return u, nil
	}
	return nil, e
}
