package reference

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/shekit/shekit/server/kms"
)

// DefaultRegistryRefresh is how often a server reads the stored registry for changes another
// replica made through its admin API, when Config.RegistryRefresh is zero.
const DefaultRegistryRefresh = 500 * time.Millisecond

// registryWatch puts in use, on this server, every registry another replica (or this one) saves
// in the store: it reads the sealed registry every interval and applies it when it changed. The
// sealed value changes with every save (a fresh nonce), so comparing it is the version check.
type registryWatch struct {
	saver    sealedRegistry
	svc      *kms.Service
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex // serializes refreshes
	last    []byte     // the sealed registry last seen
	lastErr string     // the last failure logged, so that a store that stays down logs once
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// start watches for changes until close. seen is the sealed registry in use when it came from
// the store; otherwise (a registry file, the demo registry) the one stored now counts as seen:
// the registry in use was chosen over it at start.
func (w *registryWatch) start(ctx context.Context, seen []byte) error {
	if seen == nil {
		var err error
		if seen, _, err = w.saver.st.LookupSecret(ctx, registrySecret); err != nil {
			return err
		}
	}
	w.last = seen
	ctx, w.stop = context.WithCancel(context.Background())
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(w.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.check(ctx)
			}
		}
	}()
	return nil
}

// check applies the stored registry if it changed, logging a failure once while it lasts; each
// read has a deadline of its own.
func (w *registryWatch) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(w.interval, 2*time.Second))
	defer cancel()
	err := w.refresh(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && err.Error() != w.lastErr {
		w.log.Error("registry refresh", "err", err)
	}
	if err == nil {
		w.lastErr = ""
	} else {
		w.lastErr = err.Error()
	}
}

// refresh applies the stored registry now if it changed. The admin API calls it before an edit
// that starts from the registry in use, so that an edit another replica saved a moment ago is
// built upon, not lost.
func (w *registryWatch) refresh(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	sealed, ok, err := w.saver.st.LookupSecret(ctx, registrySecret)
	if err != nil || !ok || bytes.Equal(sealed, w.last) {
		return err
	}
	reg, err := w.saver.open(sealed)
	if err != nil {
		return err
	}
	w.svc.SetRegistry(reg)
	w.last = sealed
	w.log.Info("registry changed in the store: now in use", "suppliers", len(reg.Suppliers))
	return nil
}

// close stops the watch.
func (w *registryWatch) close() {
	if w.stop != nil {
		w.stop()
		w.wg.Wait()
	}
}
