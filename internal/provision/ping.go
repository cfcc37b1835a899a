package provision

import "context"

// Ping checks that the admin can still log in to the admin database and run
// a statement. It is what a readiness probe asks.
func (p *Provisioner) Ping(ctx context.Context) error {
	var one int
	if err := p.adminPool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return backendErr("admin login check", err)
	}
	return nil
}
