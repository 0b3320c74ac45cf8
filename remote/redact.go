package remote

import (
	"sort"
	"strings"
	"sync"
)

// Redactor removes registered secret values from text before it is
// printed or put into an error. One Redactor is shared by every host of a
// run; it is safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Mask replaces every secret value.
const Mask = "<redacted>"

// Add registers secret values. Empty values are ignored; a multi-line
// value is also registered line by line, since output is printed by line.
func (r *Redactor) Add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		for _, s := range append([]string{v}, strings.Split(v, "\n")...) {
			if len(strings.TrimSpace(s)) >= 4 && !contains(r.secrets, s) {
				r.secrets = append(r.secrets, s)
			}
		}
	}
	// Longest first, so that a secret containing another is masked whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// Redact returns s with every registered secret replaced by Mask.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, Mask)
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// redactedError shows its error with the secrets masked, and still
// unwraps to it for errors.Is and errors.As.
type redactedError struct {
	err error
	r   *Redactor
}

func (e redactedError) Error() string { return e.r.Redact(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// RedactError returns err with every registered secret masked in its
// message: what a target returns is printed by Mage.
func (r *Redactor) RedactError(err error) error {
	if err == nil || r == nil {
		return err
	}
	return redactedError{err: err, r: r}
}
