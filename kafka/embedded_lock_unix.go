//go:build unix

package kafka

import (
	"errors"
	"os"
	"syscall"
)

// lockFile opens path (created if missing) and takes an exclusive flock
// on it without waiting. held reports that another open file holds it (f
// is then nil). Read-only: a process of another user sharing the
// directory may still find it held and become a client.
func lockFile(path string) (f *os.File, held bool, err error) {
	f, err = os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, err
	}
	return f, false, nil
}
