package tts

import (
	"errors"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/baseurl"
)

func TestNewClientBaseURL(t *testing.T) {
	c, err := NewClient(ClientConfig{BaseURL: "http://10.0.0.1:8000/speech/"})
	if err != nil || c.url("/health") != "http://10.0.0.1:8000/speech/health" {
		t.Fatalf("NewClient: %v", err)
	}
	for _, tc := range []struct {
		raw  string
		want error
	}{
		{"http://user:hunter2@10.0.0.1:8000", baseurl.ErrCredentials},
		{"https://hunter2@10.0.0.1", baseurl.ErrCredentials},
		{"ws://10.0.0.1:8000", baseurl.ErrScheme},
		{"http://", baseurl.ErrNoHost},
	} {
		_, err := NewClient(ClientConfig{BaseURL: tc.raw})
		if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "tts: base URL") {
			t.Errorf("NewClient(%q): err = %v, want %v", tc.raw, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NewClient(%q): the error repeats the password: %v", tc.raw, err)
		}
	}
}
