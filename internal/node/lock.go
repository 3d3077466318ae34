package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lockFile is the file in the data directory that one node holds locked
// while it runs. Two nodes on one data directory would share raft state,
// the embedded catalog and staged files: the second would loop on offset
// overlaps and leave orphan files. The lock is flock(2): the kernel drops it
// when the holder exits, however it exits, so a crash never leaves a stale
// lock behind. The file's text names the holder, for the refusal message.
const lockFile = "floe.lock"

type dirLock struct{ f *os.File }

// lockDataDir takes dir's lock (creating dir if needed) or says who holds
// it.
func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("node.data_dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node.data_dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := os.ReadFile(path)
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "holder unknown"
			}
			return nil, fmt.Errorf("node.data_dir %s is in use by another floe node (%s); stop it, or give this node its own data_dir", dir, who)
		}
		return nil, fmt.Errorf("node.data_dir %s: lock %s: %w", dir, path, err)
	}
	host, _ := os.Hostname()
	if err := f.Truncate(0); err == nil {
		_, _ = fmt.Fprintf(f, "pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	}
	return &dirLock{f: f}, nil
}

// release gives the lock up. The file stays: removing it would let a
// third node lock a new file while a second still waits on the old one.
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
