package procrig

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one running (or exited) floe process.
type Proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process exited
	err     error         // cmd.Wait's result, once done is closed

	mu      sync.Mutex
	peakRSS int64
}

// Env is this process's environment without FLOE_* variables, which would
// reconfigure a floe child, plus extra.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLOE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Start runs bin with args and Env(extraEnv...), its stdout and stderr
// appended to logPath after a line naming the command.
func Start(bin, logPath string, extraEnv []string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "==== %s floe %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "), strings.Join(extraEnv, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = Env(extraEnv...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("procrig: start %s: %w", bin, err)
	}
	p := &Proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file the process's output is appended to.
func (p *Proc) LogPath() string { return p.logPath }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit and reports whether it
// did.
func (p *Proc) Wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// Err is the process's exit error (nil for exit status 0), once it exited.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// State describes how the process exited ("" while it runs).
func (p *Proc) State() string {
	if !p.Exited() {
		return ""
	}
	return p.cmd.ProcessState.String()
}

// ExitCode is the exit status, or -1 while running or when killed by a
// signal.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// KilledBySIGKILL reports whether the exited process died of SIGKILL.
func (p *Proc) KilledBySIGKILL() bool {
	if !p.Exited() {
		return false
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill SIGKILLs the process and waits up to 30 s for it to be gone. It
// fails if the process had exited by itself before, or died of anything
// else.
func (p *Proc) Kill() error {
	if p.Exited() {
		return fmt.Errorf("exited by itself before its kill: %s", p.State())
	}
	p.SampleRSS()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("SIGKILL: %w", err)
	}
	if !p.Wait(30 * time.Second) {
		return fmt.Errorf("still running 30s after SIGKILL")
	}
	if !p.KilledBySIGKILL() {
		return fmt.Errorf("exited with %s, want killed by SIGKILL", p.State())
	}
	return nil
}

// Stop sends SIGTERM (floe's final commit) and waits up to timeout for a
// clean exit; a process still running then is SIGKILLed. It fails unless
// the process exited with status 0 within the timeout. A process that had
// already exited is left alone, with its exit as the error.
func (p *Proc) Stop(timeout time.Duration) error {
	if p.Exited() {
		if p.err != nil {
			return fmt.Errorf("had exited before its stop: %s", p.State())
		}
		return nil
	}
	p.SampleRSS()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	if !p.Wait(timeout) {
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not exit within %s of SIGTERM; killed", timeout)
	}
	if code := p.ExitCode(); code != 0 {
		return fmt.Errorf("exited with %s after SIGTERM, want exit status 0", p.State())
	}
	return nil
}

// SampleRSS folds the running process's peak RSS (VmHWM, which only grows)
// into PeakRSS. Kill and Stop sample before the signal.
func (p *Proc) SampleRSS() {
	if p.Exited() {
		return
	}
	v := procPeakRSS(p.Pid())
	p.mu.Lock()
	p.peakRSS = max(p.peakRSS, v)
	p.mu.Unlock()
}

// PeakRSS is the highest peak RSS sampled, in bytes (0 without /proc).
func (p *Proc) PeakRSS() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS
}

// procPeakRSS reads a process's peak resident set size (VmHWM) from
// /proc/<pid>/status; 0 where there is no /proc or the process is gone.
func procPeakRSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
