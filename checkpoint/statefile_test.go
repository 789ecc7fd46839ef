package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/raydeploy/sdk/internal/fstrust"
)

// stateReaders are the two state files read outside the lock: the ledger
// and the failure record, each with a valid content.
var stateReaders = []struct {
	file, content string
	read          func(dir string) error
}{
	{LedgerFile, `{"version":1,"checkpoints":{}}`, func(dir string) error {
		s, err := OpenStore(dir)
		if err != nil {
			return err
		}
		_, err = s.Load()
		return err
	}},
	{FailureFile, `{"version":1,"checkpoint":"a","error":"x","timestamp":"2026-01-01T00:00:00Z"}`, func(dir string) error {
		_, err := ReadFailure(dir)
		return err
	}},
}

func TestStateFilesOpenedSafely(t *testing.T) {
	for _, sr := range stateReaders {
		t.Run(sr.file, func(t *testing.T) {
			newDir := func(t *testing.T) (dir, path string) {
				dir = filepath.Join(t.TempDir(), "state")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				return dir, filepath.Join(dir, sr.file)
			}
			refused := func(t *testing.T, err error, what string) {
				t.Helper()
				var ue *fstrust.UnsafeError
				if !errors.As(err, &ue) {
					t.Errorf("%s: error %v (%T), want an *fstrust.UnsafeError", what, err, err)
				}
			}

			t.Run("symlink", func(t *testing.T) {
				dir, path := newDir(t)
				target := filepath.Join(t.TempDir(), "elsewhere.json")
				if err := os.WriteFile(target, []byte(sr.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
				refused(t, sr.read(dir), "a symbolic link")
			})
			t.Run("fifo", func(t *testing.T) {
				dir, path := newDir(t)
				if err := syscall.Mkfifo(path, 0o600); err != nil {
					t.Fatal(err)
				}
				// No writer ever opens it: a blocking open would hang here
				// until the test's deadline.
				refused(t, sr.read(dir), "a FIFO")
			})
			t.Run("directory", func(t *testing.T) {
				dir, path := newDir(t)
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := sr.read(dir); err == nil {
					t.Error("a directory in the file's place was read")
				}
			})
			t.Run("writable by others", func(t *testing.T) {
				dir, path := newDir(t)
				if err := os.WriteFile(path, []byte(sr.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, 0o666); err != nil {
					t.Fatal(err)
				}
				refused(t, sr.read(dir), "mode 0666")
			})
			t.Run("readable by others is repaired", func(t *testing.T) {
				dir, path := newDir(t)
				if err := os.WriteFile(path, []byte(sr.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := sr.read(dir); err != nil {
					t.Fatalf("mode 0644: %v", err)
				}
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("after reading: %v, %v; want mode 0600", fi.Mode().Perm(), err)
				}
			})
			t.Run("owned by another user", func(t *testing.T) {
				if os.Geteuid() != 0 {
					t.Skip("needs root to give the file away")
				}
				dir, path := newDir(t)
				if err := os.WriteFile(path, []byte(sr.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(path, 4242, 4242); err != nil {
					t.Fatal(err)
				}
				refused(t, sr.read(dir), "another owner")
			})
			t.Run("plain file", func(t *testing.T) {
				dir, path := newDir(t)
				if err := os.WriteFile(path, []byte(sr.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := sr.read(dir); err != nil {
					t.Errorf("a valid file: %v", err)
				}
			})
		})
	}
}

func TestDecodeFailureIsStrict(t *testing.T) {
	good := `{"version":1,"checkpoint":"a","error":"x","timestamp":"2026-01-01T00:00:00Z"}`
	if f, err := DecodeFailure("f", []byte(good)); err != nil || f.Checkpoint != "a" {
		t.Fatalf("good record: %+v, %v", f, err)
	}
	for name, in := range map[string]string{
		"unknown key":   `{"version":1,"checkpoint":"a","eror":"x"}`,
		"trailing":      good + `}`,
		"second value":  good + ` {}`,
		"no checkpoint": `{"version":1,"error":"x"}`,
		"not an object": `[]`,
		"wrong type":    `{"version":1,"checkpoint":1}`,
	} {
		var ce *CorruptStateError
		if _, err := DecodeFailure("f", []byte(in)); !errors.As(err, &ce) {
			t.Errorf("%s: error %v, want a *CorruptStateError", name, err)
		}
	}
	var ve *VersionError
	if _, err := DecodeFailure("f", []byte(`{"version":9,"checkpoint":"a"}`)); !errors.As(err, &ve) {
		t.Errorf("version 9: error %v, want a *VersionError", err)
	}
	var ce *CorruptStateError
	if _, err := DecodeLedger("l", []byte(`{"version":1,"checkpoints":{}}]`)); !errors.As(err, &ce) {
		t.Errorf("ledger with a stray ']': %v, want a *CorruptStateError", err)
	}
}
