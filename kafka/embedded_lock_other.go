//go:build !unix

package kafka

import "os"

// lockFile takes no lock where flock does not exist: one broker per data
// directory is then the operator's to ensure.
func lockFile(path string) (*os.File, bool, error) { return nil, false, nil }
