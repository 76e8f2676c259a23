package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The store backends STORE selects.
const (
	storeBbolt = "bbolt" // one instance, the DB_PATH file
	storeEtcd  = "etcd"  // several instances on one etcd cluster, one leader doing the work
)

// Defaults of the etcd settings; the envDefault tags on Config spell the same values
// (TestEtcdConfigDefaults checks that they agree).
const (
	defaultEtcdPrefix      = "/failover-bot/"
	defaultEtcdDialTimeout = 5 * time.Second
	defaultLeaderTTL       = 10 * time.Second
)

const (
	// minLeaderTTL is etcd's floor for a lease: the server raises any shorter TTL to 1.5
	// election timeouts (1.5 s with the default 1 s election timeout, rounded up to whole
	// seconds), so a shorter LEADER_TTL would silently not be the TTL in force.
	minLeaderTTL = 2 * time.Second
	// maxLeaderTTL bounds LEADER_TTL because after a leader dies a standby waits up to a
	// whole TTL before it takes over: beyond minutes, "high availability" is not.
	maxLeaderTTL = 5 * time.Minute

	// etcdKeepAliveTime is how long a connection may be silent before the client pings
	// etcd. 10 s is gRPC-Go's floor for client pings (shorter values are raised to it) and
	// twice etcd's default --grpc-keepalive-min-time (5 s), so the server never answers
	// with GOAWAY "too_many_pings".
	etcdKeepAliveTime = 10 * time.Second
	// etcdKeepAliveTimeout is how long an unanswered ping may wait before the connection
	// is dropped and the client moves to another member: a black-holed member is left
	// within 15 s.
	etcdKeepAliveTimeout = 5 * time.Second
	// etcdMaxSend is the client's send limit. The client's default, 2 MiB, would refuse the
	// final write of a request of some 2,300 VMs (MAX_TARGETS allows 5,000) before etcd saw it;
	// etcd's own --max-request-bytes is the limit that counts, and the README says what to set.
	etcdMaxSend = 32 << 20

	// pemFileMaxBytes caps the TLS files read at start: a CA bundle of a few hundred
	// certificates fits; anything larger is the wrong file.
	pemFileMaxBytes = 1 << 20
)

// normaliseEtcd is LoadConfig's part for the etcd settings: STORE is lower-cased, the
// endpoint list trimmed and deduplicated, and ETCD_PREFIX gets a trailing "/". The slash
// makes the prefix a directory: without it a range read of "/failover-bot" would also
// return the keys of a second deployment under "/failover-bot-staging/".
func (c *Config) normaliseEtcd() {
	c.Store = strings.ToLower(strings.TrimSpace(c.Store))
	for i, ep := range c.EtcdEndpoints {
		if ep = strings.TrimSpace(ep); strings.Contains(ep, "://") {
			c.EtcdEndpoints[i] = strings.TrimSuffix(ep, "/")
		}
	}
	c.EtcdEndpoints = cleanList(c.EtcdEndpoints)
	if c.EtcdPrefix != "" && !strings.HasSuffix(c.EtcdPrefix, "/") {
		c.EtcdPrefix += "/"
	}
}

// validateEtcd is Validate's part for STORE and the etcd settings, TLS files included.
// now decides whether a certificate has expired.
func (c Config) validateEtcd(p *ConfigError, now time.Time) {
	c.etcdSettings(p, now)
}

// etcdClientConfig builds the etcd client's configuration from a valid STORE=etcd
// configuration. It reads the TLS files again (they are checked by Validate at start), so
// a certificate replaced since is used, and refuses to build a configuration Validate
// would refuse.
func (c Config) etcdClientConfig() (clientv3.Config, error) {
	if c.Store != storeEtcd {
		return clientv3.Config{}, fmt.Errorf("configuration: STORE is %q: the etcd client is only for STORE=etcd", c.Store)
	}
	p := &ConfigError{}
	tlsConfig := c.etcdSettings(p, time.Now())
	if err := p.err(); err != nil {
		return clientv3.Config{}, err
	}
	return clientv3.Config{
		Endpoints: slices.Clone(c.EtcdEndpoints),
		// In client v3.7 DialTimeout bounds the logon (ETCD_USERNAME) inside clientv3.New and
		// a new lease's first keep-alive (DialTimeout + 1 s); connecting itself is
		// non-blocking and each call carries its own context.
		DialTimeout:          c.EtcdDialTimeout,
		DialKeepAliveTime:    etcdKeepAliveTime,
		DialKeepAliveTimeout: etcdKeepAliveTimeout,
		MaxCallSendMsgSize:   etcdMaxSend,
		// PermitWithoutStream stays false: etcd's server refuses pings on a connection without
		// a stream (its enforcement policy), and would close the connection for them.
		PermitWithoutStream: false,
		TLS:                 tlsConfig,
		Username:            c.EtcdUsername,
		Password:            c.EtcdPassword.Value(),
		// AutoSyncInterval stays 0: syncing would replace ETCD_ENDPOINTS with the members'
		// advertised client URLs, which another site may not reach or whose names the
		// certificates may not carry. The operator's list is the one used.
		AutoSyncInterval: 0,
		// RejectOldCluster stays false: it refuses clusters older than the client's previous
		// minor release (3.6), and Debian's etcd-server is 3.4.
		RejectOldCluster: false,
		// The client logs through zap to stderr by default; the store reports what matters as
		// errors through slog, so the client's own log is dropped.
		Logger: zap.NewNop(),
	}, nil
}

// etcdSettings checks STORE and the etcd settings as the client will use them and returns
// the client's TLS configuration (nil for plaintext endpoints or without STORE=etcd). Each
// problem names its variable and never holds a secret or a file's content.
func (c Config) etcdSettings(p *ConfigError, now time.Time) *tls.Config {
	switch c.Store {
	case "", storeBbolt:
		if set := c.etcdSettingsSet(); len(set) == 1 {
			p.add("%s is set but STORE is bbolt; set STORE=etcd or unset it", set[0])
		} else if len(set) > 1 {
			p.add("%s are set but STORE is bbolt; set STORE=etcd or unset them", strings.Join(set, ", "))
		}
		return nil
	case storeEtcd:
	default:
		p.add("STORE %q must be bbolt (one instance, the DB_PATH file) or etcd (several instances, one leader; ETCD_ENDPOINTS)", truncateValue(c.Store))
		return nil
	}

	schemes := map[string]bool{}
	if len(c.EtcdEndpoints) == 0 {
		p.add("ETCD_ENDPOINTS is required with STORE=etcd: every etcd member, comma-separated, e.g. https://etcd1:2379,https://etcd2:2379,https://etcd3:2379")
	}
	for _, ep := range c.EtcdEndpoints {
		scheme, err := checkEtcdEndpoint(ep)
		if err != nil {
			p.add("ETCD_ENDPOINTS: %q %v", displayEndpoint(ep), err)
			continue
		}
		schemes[scheme] = true
	}
	if err := checkEtcdPrefix(c.EtcdPrefix); err != nil {
		p.add("ETCD_PREFIX %q %v", truncateValue(c.EtcdPrefix), err)
	}

	switch {
	case c.EtcdPassword != "" && c.EtcdUsername == "":
		p.add("ETCD_PASSWORD is set but ETCD_USERNAME is not: name the etcd user it belongs to")
	case c.EtcdUsername != "" && c.EtcdPassword == "":
		// The client authenticates only with both, and would silently connect as nobody.
		p.add("ETCD_USERNAME is set but ETCD_PASSWORD is not (or ETCD_PASSWORD_FILE): without it the client connects unauthenticated")
	}

	dialOK := true
	if c.EtcdDialTimeout <= 0 {
		p.add("ETCD_DIAL_TIMEOUT must be a positive duration, e.g. 5s")
		dialOK = false
	}
	ttlOK := false
	switch {
	case c.LeaderTTL%time.Second != 0:
		p.add("LEADER_TTL %v must be whole seconds (etcd leases count in seconds), e.g. 10s", c.LeaderTTL)
	case c.LeaderTTL < minLeaderTTL:
		p.add("LEADER_TTL %v is shorter than 2s, the shortest lease etcd grants as asked (it raises shorter ones)", c.LeaderTTL)
	case c.LeaderTTL > maxLeaderTTL:
		p.add("LEADER_TTL %v is longer than 5m: after the leader dies a standby waits up to LEADER_TTL before it takes over", c.LeaderTTL)
	default:
		ttlOK = true
	}
	if dialOK && ttlOK && c.EtcdDialTimeout+time.Second > c.LeaderTTL {
		// A new lease's first keep-alive answer may take ETCD_DIAL_TIMEOUT + 1 s before the
		// client gives the lease up; past LEADER_TTL a leader could still believe in a lease
		// etcd has already expired.
		p.add("ETCD_DIAL_TIMEOUT %v must be at least 1s shorter than LEADER_TTL %v: the client waits ETCD_DIAL_TIMEOUT+1s for a new lease's first keep-alive, and a leader must not outlive its lease",
			c.EtcdDialTimeout, c.LeaderTTL)
	}

	return c.etcdTLSConfig(p, schemes, now)
}

// etcdSettingsSet lists the etcd variables whose values are not their defaults, for the
// refusal under STORE=bbolt: a setting that would be silently ignored surprises an operator
// who believes the bot runs on etcd. A variable set to its default is indistinguishable
// from an unset one, and just as harmless.
func (c Config) etcdSettingsSet() []string {
	var set []string
	add := func(key string, isSet bool) {
		if isSet {
			set = append(set, key)
		}
	}
	add("ETCD_ENDPOINTS", len(c.EtcdEndpoints) > 0)
	add("ETCD_PREFIX", c.EtcdPrefix != "" && c.EtcdPrefix != defaultEtcdPrefix)
	add("ETCD_CA_FILE", c.EtcdCAFile != "")
	add("ETCD_CERT_FILE", c.EtcdCertFile != "")
	add("ETCD_KEY_FILE", c.EtcdKeyFile != "")
	add("ETCD_USERNAME", c.EtcdUsername != "")
	add("ETCD_PASSWORD", c.EtcdPassword != "")
	add("ETCD_DIAL_TIMEOUT", c.EtcdDialTimeout != 0 && c.EtcdDialTimeout != defaultEtcdDialTimeout)
	add("LEADER_TTL", c.LeaderTTL != 0 && c.LeaderTTL != defaultLeaderTTL)
	return set
}

// checkEtcdEndpoint checks one ETCD_ENDPOINTS entry: http://host:port, https://host:port or
// host:port, as the etcd client reads them. It returns the scheme ("" for host:port).
// Errors never repeat the entry: the caller names it, without credentials.
func checkEtcdEndpoint(ep string) (string, error) {
	if !strings.Contains(ep, "://") {
		if strings.Contains(ep, "@") {
			return "", errors.New("must not contain credentials (use ETCD_USERNAME and ETCD_PASSWORD)")
		}
		if err := checkEtcdHostPort(ep); err != nil {
			return "", err
		}
		return "", nil
	}
	u, err := url.Parse(ep)
	switch {
	case err != nil:
		// url's error repeats the URL, credentials and all: say only that it is not one.
		return "", errors.New("is not a valid URL (write https://host:port or host:port)")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("must be http://host:port, https://host:port or host:port")
	case u.User != nil:
		return "", errors.New("must not contain credentials (use ETCD_USERNAME and ETCD_PASSWORD)")
	case u.Host == "":
		return "", errors.New("has no host")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("must be only scheme://host:port, without a path")
	}
	if err := checkEtcdHostPort(u.Host); err != nil {
		return "", err
	}
	return u.Scheme, nil
}

// checkEtcdHostPort requires an explicit port: without one the client would dial a port
// nobody chose (etcd's is 2379).
func checkEtcdHostPort(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if !strings.Contains(hostport, ":") || strings.HasSuffix(hostport, "]") {
			return errors.New("needs a port, e.g. etcd1.example.com:2379")
		}
		return errors.New("is not host:port, e.g. etcd1.example.com:2379")
	}
	if host == "" {
		return errors.New("has no host")
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		return errors.New("has no valid host name or IP address, e.g. etcd1.example.com:2379")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("has no valid port (1-65535), e.g. etcd1.example.com:2379")
	}
	return nil
}

// validHostname reports whether h is a DNS name: labels of letters, digits, hyphens and
// underscores, separated by dots.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// displayEndpoint is an endpoint as errors and logs show it: without anything before an
// "@" (a user and password typed into the URL), at most 80 characters.
func displayEndpoint(ep string) string {
	if at := strings.LastIndex(ep, "@"); at >= 0 {
		scheme, _, hasScheme := strings.Cut(ep, "://")
		if hasScheme && len(scheme) < at {
			ep = scheme + "://…@" + ep[at+1:]
		} else {
			ep = "…@" + ep[at+1:]
		}
	}
	if len(ep) > 80 {
		cut := 80
		for cut > 0 && !utf8.RuneStart(ep[cut]) {
			cut--
		}
		return ep[:cut] + "…"
	}
	return ep
}

// endpointHost returns an endpoint's host, "" if it has none.
func endpointHost(ep string) string {
	hostport := ep
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return ""
		}
		hostport = u.Host
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return ""
	}
	return host
}

// checkEtcdPrefix checks ETCD_PREFIX after normaliseEtcd added its trailing "/".
func checkEtcdPrefix(prefix string) error {
	switch {
	case prefix == "":
		return errors.New("is empty: every key needs a prefix of its own, e.g. /failover-bot/")
	case !utf8.ValidString(prefix):
		return errors.New("is not valid UTF-8")
	case strings.ContainsFunc(prefix, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return errors.New("must not contain spaces or control characters (tabs, newlines, NUL)")
	case !strings.HasPrefix(prefix, "/"):
		return errors.New("must start with /, e.g. /failover-bot/")
	case prefix == "/":
		return errors.New("must not be / alone: the bot's keys need a directory of their own, e.g. /failover-bot/")
	case strings.Contains(prefix, "//"):
		return errors.New("has an empty path segment (//)")
	}
	return nil
}

// etcdTLSConfig decides the transport and reads the TLS files. TLS is on when an endpoint
// is https:// or a TLS file is set; host:port endpoints then use it too. The client picks
// the credentials of the first endpoint for every connection, so http:// cannot be mixed
// with TLS: it would turn TLS off for all of them.
func (c Config) etcdTLSConfig(p *ConfigError, schemes map[string]bool, now time.Time) *tls.Config {
	var files []string
	for _, f := range []struct{ key, path string }{
		{"ETCD_CA_FILE", c.EtcdCAFile}, {"ETCD_CERT_FILE", c.EtcdCertFile}, {"ETCD_KEY_FILE", c.EtcdKeyFile},
	} {
		if f.path != "" {
			files = append(files, f.key)
		}
	}
	if schemes["http"] && schemes["https"] {
		p.add("ETCD_ENDPOINTS mixes http:// and https://: the client uses the first endpoint's scheme for every member, so use https:// for all (or http:// for all)")
		return nil
	}
	if schemes["http"] && len(files) > 0 {
		verb := "is"
		if len(files) > 1 {
			verb = "are"
		}
		p.add("%s %s set but ETCD_ENDPOINTS uses http://, which turns TLS off: use https:// endpoints", strings.Join(files, " and "), verb)
		return nil
	}
	if !schemes["https"] && len(files) == 0 {
		return nil
	}

	// Without ETCD_CA_FILE RootCAs stays nil: the system roots.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.EtcdCAFile != "" {
		pool, err := loadCAPool(c.EtcdCAFile, now)
		if err != nil {
			p.add("ETCD_CA_FILE: %v", err)
		} else {
			cfg.RootCAs = pool
		}
	}
	switch {
	case c.EtcdCertFile != "" && c.EtcdKeyFile == "":
		p.add("ETCD_CERT_FILE is set but ETCD_KEY_FILE is not: a client certificate needs its key (set both or neither)")
	case c.EtcdKeyFile != "" && c.EtcdCertFile == "":
		p.add("ETCD_KEY_FILE is set but ETCD_CERT_FILE is not: a client key needs its certificate (set both or neither)")
	case c.EtcdCertFile != "":
		if pair, ok := loadClientKeyPair(p, c.EtcdCertFile, c.EtcdKeyFile, now); ok {
			cfg.Certificates = []tls.Certificate{pair}
		}
	}
	return cfg
}

// readPEMFile reads a certificate or key file. The error names the file, never its content.
func readPEMFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, fmt.Errorf("%s is a directory, not a PEM file", path)
	case fi.Size() > pemFileMaxBytes:
		return nil, fmt.Errorf("%s is larger than %d bytes; it is not a certificate or key file", path, pemFileMaxBytes)
	}
	return os.ReadFile(path)
}

// pemBlocks decodes every PEM block in b, ignoring text between them.
func pemBlocks(b []byte) []*pem.Block {
	var blocks []*pem.Block
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return blocks
		}
		blocks = append(blocks, blk)
	}
}

func isKeyBlock(blk *pem.Block) bool { return strings.HasSuffix(blk.Type, "PRIVATE KEY") }

// loadCAPool reads ETCD_CA_FILE: at least one certificate, not all of them expired, no key.
func loadCAPool(path string, now time.Time) (*x509.CertPool, error) {
	b, err := readPEMFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	var n, expired int
	var latest time.Time
	for _, blk := range pemBlocks(b) {
		if isKeyBlock(blk) {
			return nil, fmt.Errorf("%s holds a private key; it must hold only the CA certificates (remove the key from it)", path)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d cannot be read: %v", path, n+1, err)
		}
		n++
		if now.After(cert.NotAfter) {
			expired++
			if cert.NotAfter.After(latest) {
				latest = cert.NotAfter
			}
		}
		pool.AddCert(cert)
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	case expired == n:
		return nil, fmt.Errorf("%s: every certificate in it has expired (the last on %s)", path, latest.UTC().Format(time.RFC3339))
	}
	return pool, nil
}

// loadClientKeyPair reads ETCD_CERT_FILE and ETCD_KEY_FILE, naming the variable each
// problem is about: swapped files, an encrypted key, an expired certificate or one etcd
// would refuse for client authentication, a key that is not the certificate's.
func loadClientKeyPair(p *ConfigError, certPath, keyPath string, now time.Time) (tls.Certificate, bool) {
	certPEM, certErr := readPEMFile(certPath)
	if certErr != nil {
		p.add("ETCD_CERT_FILE: %v", certErr)
	}
	keyPEM, keyErr := readPEMFile(keyPath)
	if keyErr != nil {
		p.add("ETCD_KEY_FILE: %v", keyErr)
	}
	if certErr != nil || keyErr != nil {
		return tls.Certificate{}, false
	}

	ok := true
	var leaf, key *pem.Block
	var certHasKey, keyHasCert bool
	for _, blk := range pemBlocks(certPEM) {
		switch {
		case blk.Type == "CERTIFICATE" && leaf == nil:
			leaf = blk
		case isKeyBlock(blk):
			certHasKey = true
		}
	}
	for _, blk := range pemBlocks(keyPEM) {
		switch {
		case isKeyBlock(blk) && key == nil:
			key = blk
		case blk.Type == "CERTIFICATE":
			keyHasCert = true
		}
	}
	switch {
	case leaf == nil && certHasKey:
		p.add("ETCD_CERT_FILE %s holds a private key but no certificate (are ETCD_CERT_FILE and ETCD_KEY_FILE swapped?)", certPath)
		ok = false
	case leaf == nil:
		p.add("ETCD_CERT_FILE %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", certPath)
		ok = false
	default:
		if err := checkClientCert(leaf, now); err != nil {
			p.add("ETCD_CERT_FILE %s %v", certPath, err)
			ok = false
		}
	}
	switch {
	case key == nil && keyHasCert:
		p.add("ETCD_KEY_FILE %s holds a certificate but no private key (are ETCD_CERT_FILE and ETCD_KEY_FILE swapped?)", keyPath)
		ok = false
	case key == nil:
		p.add("ETCD_KEY_FILE %s holds no PEM private key (-----BEGIN PRIVATE KEY-----)", keyPath)
		ok = false
	case key.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(key.Headers["Proc-Type"], "ENCRYPTED"):
		p.add("ETCD_KEY_FILE %s is encrypted with a passphrase; the bot needs an unencrypted key (protect the file with its permissions or a secret store)", keyPath)
		ok = false
	}
	if !ok {
		return tls.Certificate{}, false
	}
	// X509KeyPair's errors describe the mismatch or the key's format, never the bytes.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		p.add("ETCD_CERT_FILE and ETCD_KEY_FILE do not form a key pair: %v", err)
		return tls.Certificate{}, false
	}
	return pair, true
}

// checkClientCert refuses a certificate etcd would refuse: outside its validity period, or
// with an extended key usage that excludes client authentication (no extended key usage at
// all means any use).
func checkClientCert(blk *pem.Block, now time.Time) error {
	cert, err := x509.ParseCertificate(blk.Bytes)
	switch {
	case err != nil:
		return fmt.Errorf("cannot be read: %v", err)
	case now.After(cert.NotAfter):
		return fmt.Errorf("expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(cert.NotBefore):
		return fmt.Errorf("is not valid before %s (is this machine's clock right?)", cert.NotBefore.UTC().Format(time.RFC3339))
	case len(cert.ExtKeyUsage) > 0 && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny):
		return errors.New("is not a client certificate: its extended key usage lacks clientAuth, so etcd refuses it")
	}
	return nil
}

// etcdTLSOn reports whether the client will use TLS (see etcdTLSConfig).
func (c Config) etcdTLSOn() bool {
	if c.EtcdCAFile != "" || c.EtcdCertFile != "" || c.EtcdKeyFile != "" {
		return true
	}
	return slices.ContainsFunc(c.EtcdEndpoints, func(ep string) bool { return strings.HasPrefix(ep, "https://") })
}

// etcdLoopbackOnly reports whether every endpoint is on this machine: a development or
// test setup, where the warnings about clear text and a single member do not apply.
func (c Config) etcdLoopbackOnly() bool {
	if len(c.EtcdEndpoints) == 0 {
		return false
	}
	for _, ep := range c.EtcdEndpoints {
		host := endpointHost(ep)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// etcdWarnings lists etcd configurations that work but put the deployment at risk.
func (c Config) etcdWarnings() []string {
	if c.Store != storeEtcd || c.etcdLoopbackOnly() {
		return nil
	}
	var w []string
	if c.EtcdPassword != "" && !c.etcdTLSOn() {
		w = append(w, "ETCD_PASSWORD goes to etcd in clear text: ETCD_ENDPOINTS are not TLS; use https:// endpoints (and ETCD_CA_FILE for a private CA)")
	}
	if len(c.EtcdEndpoints) == 1 {
		w = append(w, fmt.Sprintf("ETCD_ENDPOINTS lists one endpoint (%s): the bot reaches etcd only through it, so losing that member stops the bot even when the cluster survives; list every member, unless it is a load balancer in front of them",
			displayEndpoint(c.EtcdEndpoints[0])))
	}
	return w
}

// etcdAttrs is Config.attrs's part for the store: STORE always, the etcd settings when
// STORE=etcd or one of them is set (so a refused configuration shows what was set). File
// paths and the user name say whether TLS and authentication are configured; the
// password prints only as [REDACTED], endpoints without credentials.
func (c Config) etcdAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("STORE", c.Store)}
	if c.Store != storeEtcd && len(c.etcdSettingsSet()) == 0 {
		return attrs
	}
	endpoints := make([]string, len(c.EtcdEndpoints))
	for i, ep := range c.EtcdEndpoints {
		endpoints[i] = displayEndpoint(ep)
	}
	return append(attrs,
		slog.String("ETCD_ENDPOINTS", strings.Join(endpoints, ",")),
		slog.String("ETCD_PREFIX", c.EtcdPrefix),
		slog.String("ETCD_CA_FILE", c.EtcdCAFile),
		slog.String("ETCD_CERT_FILE", c.EtcdCertFile),
		slog.String("ETCD_KEY_FILE", c.EtcdKeyFile),
		slog.String("ETCD_USERNAME", c.EtcdUsername),
		slog.String("ETCD_PASSWORD", c.EtcdPassword.String()),
		slog.Duration("ETCD_DIAL_TIMEOUT", c.EtcdDialTimeout),
		slog.Duration("LEADER_TTL", c.LeaderTTL),
	)
}
