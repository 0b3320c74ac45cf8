package fileutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// openat2 is the openat2 system call; tests replace it to take the path
// of kernels without it.
var openat2 = unix.Openat2

// OpenBeneath opens rel, a slash-separated path inside the folder open as
// root, for reading, following no symbolic link in any of its components
// and never leaving root: a link anywhere in the path fails the open
// (ELOOP, or ENOTDIR). flags are added to O_RDONLY, O_CLOEXEC and
// O_NOFOLLOW, e.g. O_DIRECTORY, or O_NONBLOCK so that a named pipe
// standing where a file was does not block. rel "." opens root again.
// It uses openat2 with RESOLVE_NO_SYMLINKS and RESOLVE_BENEATH and, on
// kernels without openat2, opens the components one at a time with
// O_NOFOLLOW. rel must be clean: no empty, . or .. component.
func OpenBeneath(root *os.File, rel string, flags int) (*os.File, error) {
	name := filepath.Join(root.Name(), filepath.FromSlash(rel))
	if err := checkRel(rel); err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	flags |= unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW
	how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH}
	fd, err := retry(func() (int, error) { return openat2(int(root.Fd()), rel, &how) })
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		// No openat2 (before Linux 5.6), or a sandbox that refuses it.
		fd, err = openComponents(int(root.Fd()), rel, flags)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openComponents opens rel below dirfd a component at a time, each folder
// with O_NOFOLLOW and O_DIRECTORY, the last with flags.
func openComponents(dirfd int, rel string, flags int) (int, error) {
	parts := strings.Split(rel, "/")
	owned := -1
	defer func() {
		if owned >= 0 {
			unix.Close(owned)
		}
	}()
	for _, p := range parts[:len(parts)-1] {
		fd, err := retry(func() (int, error) {
			return unix.Openat(dirfd, p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_DIRECTORY, 0)
		})
		if err != nil {
			return -1, err
		}
		if owned >= 0 {
			unix.Close(owned)
		}
		dirfd, owned = fd, fd
	}
	return retry(func() (int, error) { return unix.Openat(dirfd, parts[len(parts)-1], flags, 0) })
}

// checkRel refuses a path that is absolute, empty, or has an empty, . or
// .. component (except "." alone): the paths of a tree are clean.
func checkRel(rel string) error {
	if rel == "." {
		return nil
	}
	for _, p := range strings.Split(rel, "/") {
		if p == "" || p == "." || p == ".." {
			return fmt.Errorf("not a clean relative path: %w", unix.EINVAL)
		}
	}
	return nil
}

// retry runs open again while a signal interrupts it.
func retry(open func() (int, error)) (int, error) {
	for {
		fd, err := open()
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}
