package remote

import (
	"context"
	"sync"
	"time"
)

// HostResult is the outcome of one host's work in Each.
type HostResult struct {
	// Host is the host's name.
	Host string
	// Err is the work's error; nil when it succeeded.
	Err error
	// Duration is how long the work took.
	Duration time.Duration
}

// Each runs work on every host, at most limit at a time (all at once when
// limit < 1), and returns one result per host in the hosts' order. A
// failing host does not stop the others; cancel ctx for that.
func Each(ctx context.Context, hosts []Host, limit int, work func(context.Context, Host) error) []HostResult {
	if limit < 1 || limit > len(hosts) {
		limit = len(hosts)
	}
	results := make([]HostResult, len(hosts))
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, h := range hosts {
		results[i].Host = h.Name()
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				results[i].Err = ctx.Err()
				return
			}
			defer func() { <-slots }()
			start := time.Now()
			results[i].Err = work(ctx, h)
			results[i].Duration = time.Since(start)
		}()
	}
	wg.Wait()
	return results
}
