package server

// stack is a cleanup stack: each resource a builder acquires pushes the
// function that releases it, and unwind releases them in reverse order, so
// that a resource is closed before anything it was built on. The zero value
// is empty and ready. It is not safe for concurrent use.
type stack struct {
	closers []func()
}

// push adds the closer of a resource just acquired. A nil closer (nothing
// to release) is ignored.
func (s *stack) push(closer func()) {
	if closer != nil {
		s.closers = append(s.closers, closer)
	}
}

// unwind runs every closer pushed so far, newest first, and empties the
// stack: a second unwind does nothing.
func (s *stack) unwind() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
