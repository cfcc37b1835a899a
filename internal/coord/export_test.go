package coord

// Crash stops r the way a crashed process would: no more heartbeats or cancel
// delivery, and nothing deleted from Redis. Close afterwards does nothing.
func (r *Redis) Crash() {
	r.closeOnce.Do(func() {
		close(r.stop)
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		_ = r.pubsub.Close()
		r.wg.Wait()
		_ = r.client.Close()
	})
}

// InstanceID returns r's instance ID (defaulted if the options left it empty).
func (r *Redis) InstanceID() string { return r.opts.InstanceID }

// Crash stops f the way a crashed process would: no more heartbeats or
// answers, and nothing removed from Redis. Close afterwards does nothing.
func (f *Fleet) Crash() {
	f.closeOnce.Do(func() {
		close(f.stop)
		_ = f.pubsub.Close()
		f.wg.Wait()
		_ = f.client.Close()
	})
}
