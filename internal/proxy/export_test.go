package proxy

// SparesOpening is how many spare backends are being opened in the
// background, so that a test can wait until none is.
func (s *Server) SparesOpening() int {
	p := s.spares
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.opening {
		n += c
	}
	return n
}
