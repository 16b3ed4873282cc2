package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// openPlugin opens a plugin file once and checks what it opened: the host
// hashes and executes that open file, never the path again, so a file
// swapped in the directory after the check is not what runs. It refuses
// what someone other than the file's owner could swap or change: a symlink,
// anything but a regular file, a group- or world-writable file, a file
// owned by another user than the host's (root aside), a file in a directory
// that is not owned by the host's user or root or that is group- or
// world-writable (a sticky /tmp-like directory included), and a file nobody
// may execute. path must be absolute.
func openPlugin(path string) (*os.File, error) {
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkFileInfo(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openError explains a failed open: missing, a symlink (O_NOFOLLOW), or
// something else.
func openError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s: %v", ErrPluginNotFound, path, err)
	}
	if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		return fmt.Errorf("%w: %s is a symlink (to %s); copy the binary into the plugin directory instead", ErrPluginRefused, path, target)
	}
	return fmt.Errorf("%w: %s: %v", ErrPluginRefused, path, err)
}

// checkFileInfo checks an opened plugin file.
func checkFileInfo(path string, fi fs.FileInfo) error {
	mode := fi.Mode()
	switch {
	case !mode.IsRegular():
		return fmt.Errorf("%w: %s is not a regular file (%s); install the plugin binary there instead", ErrPluginRefused, path, mode.Type())
	case mode.Perm()&0o022 != 0:
		return fmt.Errorf("%w: %s is group- or world-writable (mode %04o); run chmod go-w on it", ErrPluginRefused, path, mode.Perm())
	case mode.Perm()&0o111 == 0:
		return fmt.Errorf("%w: %s is not executable (mode %04o); run chmod u+x on it", ErrPluginRefused, path, mode.Perm())
	}
	return checkOwner(path, "", fi)
}

// checkDir checks the directory holding a plugin: whoever may write to it
// may replace the plugin.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: plugin directory %s: %v", ErrPluginNotFound, dir, err)
		}
		return fmt.Errorf("%w: plugin directory %s: %v", ErrPluginRefused, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: plugin directory %s is not a directory", ErrPluginRefused, dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: plugin directory %s is group- or world-writable (mode %04o%s), so others could replace the plugins in it; run chmod go-w on it or install the plugins elsewhere",
			ErrPluginRefused, dir, fi.Mode().Perm(), sticky(fi.Mode()))
	}
	return checkOwner(dir, "plugin directory ", fi)
}

func sticky(m fs.FileMode) string {
	if m&fs.ModeSticky != 0 {
		return ", sticky"
	}
	return ""
}

// checkOwner refuses a file or directory owned by another user than the
// host's (effective) user or root: its owner could change it at will.
func checkOwner(path, what string, fi fs.FileInfo) error {
	uid, ok := fileOwner(fi)
	if !ok {
		return nil
	}
	if me := os.Geteuid(); uid != me && uid != 0 {
		return fmt.Errorf("%w: %s%s is owned by user id %d, not by this user (%d) or root; install the plugin as one of them",
			ErrPluginRefused, what, path, uid, me)
	}
	return nil
}

// hashOpen returns the SHA-256 of an open file (from its start, without
// moving its offset).
func hashOpen(f *os.File, path string) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, math.MaxInt64)); err != nil {
		return "", fmt.Errorf("%w: hashing %s: %v", ErrPluginRefused, path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkAndHash is what Discover does with a plugin file: the checks of a
// launch, and the SHA-256 of the file it checked.
func checkAndHash(path string) (string, error) {
	f, err := openPlugin(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashOpen(f, path)
}
