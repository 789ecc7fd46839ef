package baseurl

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{"http://10.0.0.1:8265", "http://10.0.0.1:8265"},
		{"https://tts.example.test/speech/", "https://tts.example.test/speech"},
		{"http://[::1]:8000//", "http://[::1]:8000"},
	} {
		u, err := Parse(tc.raw)
		if err != nil || u.String() != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.raw, u, err, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, tc := range []struct {
		raw  string
		want error
	}{
		{"ftp://10.0.0.1:8265", ErrScheme},
		{"10.0.0.1:8265", ErrScheme},
		{"localhost:8265", ErrScheme},
		{"admin:" + secret + "@10.0.0.1:8265", ErrScheme},
		{"", ErrScheme},
		{"http://", ErrNoHost},
		{"http:///path", ErrNoHost},
		{"http://admin:" + secret + "@10.0.0.1:8265", ErrCredentials},
		{"https://" + secret + "@10.0.0.1", ErrCredentials},
		{"ftp://admin:" + secret + "@10.0.0.1", ErrCredentials},
		{"http://10.0.0.1:port", ErrSyntax},
		{"http://admin:" + secret + "@10.0.0.1:port", ErrSyntax},
		{"http://admin:" + secret + "\x7f@10.0.0.1", ErrSyntax},
	} {
		u, err := Parse(tc.raw)
		var e *Error
		if u != nil || !errors.Is(err, tc.want) || !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %v, %v; want an *Error matching %v", tc.raw, u, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "admin") {
			t.Errorf("Parse(%q): the error repeats the credentials: %v", tc.raw, err)
		}
		if !strings.HasPrefix(err.Error(), "base URL") {
			t.Errorf("Parse(%q): error %q does not name the base URL", tc.raw, err)
		}
	}
}
