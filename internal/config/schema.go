package config

// This file maps the TOML tree onto Config, one function per table, filling
// in defaults for absent keys.

// decodeConfig fills c from the document root.
func (d *decoder) decodeConfig(root *table, c *Config) {
	d.decodeTailscale(root.sub("tailscale"), &c.Tailscale)
	if t := root.sub("provisioning"); t != nil {
		t.boolean("allow_raw_sql", &c.Provisioning.AllowRawSQL)
		t.finish()
	}
	c.Revalidation.Interval = defaultInterval
	if t := root.sub("revalidation"); t != nil {
		t.duration("interval", &c.Revalidation.Interval, defaultInterval)
		t.finish()
	}
	if t := root.sub("defaults"); t != nil {
		d.decodeLimits(t.sub("limits"), &c.Defaults.Limits)
		t.finish()
	}
	c.Redis = optional(root.sub("redis"), d.decodeRedis)
	c.Metrics = optional(root.sub("metrics"), func(t *table, m *Metrics) { t.str("listen", &m.Listen) })
	c.Console = optional(root.sub("console"), d.decodeConsole)
	c.Shutdown.DrainTimeout = defaultDrainTimeout
	if t := root.sub("shutdown"); t != nil {
		t.duration("drain_timeout", &c.Shutdown.DrainTimeout, defaultDrainTimeout)
		t.finish()
	}
	for _, t := range root.tables("listeners") {
		c.Listeners = append(c.Listeners, d.decodeListener(t))
	}
	root.finish()
}

// decodeTailscale fills ts from [tailscale] (t may be nil), taking the auth
// key from TS_AUTHKEY when the file sets none.
func (d *decoder) decodeTailscale(t *table, ts *Tailscale) {
	ts.StateDir = defaultStateDir
	ts.Capability = DefaultCapability
	if t != nil {
		t.str("hostname", &ts.Hostname)
		t.strDefault("state_dir", &ts.StateDir, defaultStateDir)
		t.str("auth_key", &ts.AuthKey)
		t.str("control_url", &ts.ControlURL)
		t.boolean("ephemeral", &ts.Ephemeral)
		t.strList("advertise_tags", &ts.AdvertiseTags)
		t.strDefault("capability", &ts.Capability, DefaultCapability)
		t.finish()
	}
	if ts.AuthKey == "" && d.lookupEnv != nil {
		ts.AuthKey, _ = d.lookupEnv("TS_AUTHKEY")
	}
}

// decodeLimits fills l from [defaults.limits] (t may be nil).
func (d *decoder) decodeLimits(t *table, l *Limits) {
	if t == nil {
		return
	}
	t.integer("max_conns_per_user", &l.MaxConnsPerUser)
	t.duration("max_conn_duration", &l.MaxConnDuration, 0)
	t.byteSize("max_bytes_per_conn", &l.MaxBytesPerConn)
	t.finish()
}

// optional decodes a table that may be absent: nil when t is nil, else a
// new T that fill reads t's keys into, after which the keys fill did not
// read are reported.
func optional[T any](t *table, fill func(*table, *T)) *T {
	if t == nil {
		return nil
	}
	v := new(T)
	fill(t, v)
	t.finish()
	return v
}

// decodeRedis fills r from [redis].
func (d *decoder) decodeRedis(t *table, r *Redis) {
	t.str("address", &r.Address)
	t.str("password", &r.Password)
	t.integer("db", &r.DB)
	t.strDefault("key_prefix", &r.KeyPrefix, defaultRedisKeyPrefix)
}

// decodeConsole fills c from [console].
func (d *decoder) decodeConsole(t *table, c *Console) {
	t.str("listen", &c.Listen)
	t.str("local", &c.Local)
	t.str("local_token_file", &c.LocalTokenFile)
}

// decodeListener returns one [[listeners]] element (t may be nil when the
// element was not a table; its error is already reported).
func (d *decoder) decodeListener(t *table) Listener {
	l := Listener{TLSMode: TLSOptional, HandshakeTimeout: defaultHandshakeTimeout}
	if t == nil {
		return l
	}
	t.str("name", &l.Name)
	t.str("listen", &l.Listen)
	t.enum("mode", (*string)(&l.Mode), "")
	t.str("backend", &l.Backend)
	t.str("service", &l.Service)
	t.enum("tls_mode", (*string)(&l.TLSMode), string(TLSOptional))
	t.boolean("use_tailscale_tls", &l.UseTailscaleTLS)
	t.str("cert_file", &l.CertFile)
	t.str("key_file", &l.KeyFile)
	t.duration("handshake_timeout", &l.HandshakeTimeout, defaultHandshakeTimeout)
	t.str("audit_log", &l.AuditLog)
	l.Postgres = optional(t.sub("postgres"), d.decodePostgres)
	t.finish()
	return l
}

// decodePostgres fills p from [listeners.postgres].
func (d *decoder) decodePostgres(t *table, p *Postgres) {
	t.str("admin_user", &p.AdminUser)
	t.str("admin_password", &p.AdminPassword)
	t.strDefault("admin_database", &p.AdminDatabase, defaultAdminDatabase)
	t.strDefault("user_prefix", &p.UserPrefix, defaultUserPrefix)
	t.duration("user_ttl", &p.UserTTL, defaultUserTTL)
	t.duration("cleanup_interval", &p.CleanupInterval, defaultCleanupInterval)
	p.MaxSpareBackends = defaultMaxSpares
	t.integer("spare_backends", &p.SpareBackends)
	t.integer("max_spare_backends", &p.MaxSpareBackends)
	t.duration("spare_idle_timeout", &p.SpareIdleTimeout, defaultSpareIdle)
	var raw bool
	if t.boolean("allow_raw_sql", &raw) {
		p.AllowRawSQL = &raw
	}
	t.enum("backend_tls", (*string)(&p.BackendTLS), string(BackendTLSPrefer))
	t.str("backend_ca_file", &p.BackendCAFile)
	p.BackendAuth = DefaultBackendAuth()
	t.enumList("backend_auth", &p.BackendAuth)
}
