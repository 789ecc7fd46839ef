package raydash

import (
	"io"
	"log/slog"
)

// slogText returns a text logger writing to w.
func slogText(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
