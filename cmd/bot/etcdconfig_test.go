package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"
)

// testEtcdPassword is the etcd password of these tests; no error, log line or printed
// configuration may contain it.
const testEtcdPassword = "ETCDPASSWORDSECRETVALUE"

// threeMembers is a production-shaped ETCD_ENDPOINTS: three members over TLS.
const threeMembers = "https://etcd1.example.com:2379,https://etcd2.example.com:2379,https://etcd3.example.com:2379"

// etcdEnv is validEnv on etcd (three TLS members, system roots), changed by kv as with does.
func etcdEnv(kv ...string) map[string]string {
	return with(with(validEnv(), "STORE", "etcd", "ETCD_ENDPOINTS", threeMembers), kv...)
}

// loadAndValidate is the bot's start: LoadConfig, then Validate. It returns the first error.
func loadAndValidate(env map[string]string) (Config, error) {
	cfg, err := LoadConfig(lookupFrom(env), false)
	if err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate(false)
}

// assertCleanError checks what every configuration error promises: one line, no secret,
// nothing read from a file.
func assertCleanError(t *testing.T, msg string, files ...string) {
	t.Helper()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	assertNoSecrets(t, "error", msg)
	if strings.Contains(msg, testEtcdPassword) {
		t.Errorf("error contains the etcd password: %s", msg)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a file the row removes or never writes
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) >= 24 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line[:24]) {
				t.Errorf("error quotes the content of %s: %s", f, msg)
			}
		}
	}
}

// testPKI is a CA and what it issues, written as PEM files into a test's temporary directory.
// Certificates are valid from an hour before base; base is the time the checks run at.
type testPKI struct {
	t      *testing.T
	dir    string
	base   time.Time
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: t.TempDir(), base: time.Now().UTC().Truncate(time.Second)}
	p.caKey = p.newKey()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "failover-bot test etcd CA"},
		NotBefore:             p.base.Add(-time.Hour),
		NotAfter:              p.base.Add(30 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caFile = p.write("ca.pem", certBlock(der))
	return p
}

func (p *testPKI) newKey() *ecdsa.PrivateKey {
	p.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	return k
}

// issue signs a certificate for key; change adjusts the template (validity, usages, names).
func (p *testPKI) issue(key *ecdsa.PrivateKey, cn string, change func(*x509.Certificate)) []byte {
	p.t.Helper()
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + p.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    p.base.Add(-time.Hour),
		NotAfter:     p.base.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if change != nil {
		change(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	return der
}

// client writes a client certificate and its key, returning their paths.
func (p *testPKI) client(name string, change func(*x509.Certificate)) (certFile, keyFile string) {
	p.t.Helper()
	key := p.newKey()
	der := p.issue(key, "failover-bot", change)
	return p.write(name+".crt", certBlock(der)), p.write(name+".key", p.keyBlock(key))
}

// server writes a server certificate for 127.0.0.1 and its key.
func (p *testPKI) server() (certFile, keyFile string) {
	p.t.Helper()
	key := p.newKey()
	der := p.issue(key, "etcd", func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		c.DNSNames = []string{"localhost"}
	})
	return p.write("server.crt", certBlock(der)), p.write("server.key", p.keyBlock(key))
}

func (p *testPKI) keyBlock(key *ecdsa.PrivateKey) *pem.Block {
	p.t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

func certBlock(der []byte) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: der} }

func (p *testPKI) write(name string, blocks ...*pem.Block) string {
	p.t.Helper()
	var b bytes.Buffer
	for _, blk := range blocks {
		if err := pem.Encode(&b, blk); err != nil {
			p.t.Fatal(err)
		}
	}
	return p.writeRaw(name, b.Bytes())
}

func (p *testPKI) writeRaw(name string, content []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func (p *testPKI) read(path string) []byte {
	p.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// TestEtcdConfigDefaults: bbolt stays the default with nothing etcd-related set, the
// etcd settings have their documented defaults, and the constants the checks use agree
// with the envDefault tags.
func TestEtcdConfigDefaults(t *testing.T) {
	cfg, err := loadAndValidate(validEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store != storeBbolt {
		t.Errorf("Store = %q, want %q", cfg.Store, storeBbolt)
	}
	if set := cfg.etcdSettingsSet(); set != nil {
		t.Errorf("defaults count as set under bbolt: %v", set)
	}

	cfg, err = loadAndValidate(etcdEnv())
	if err != nil {
		t.Fatalf("STORE=etcd with only ETCD_ENDPOINTS: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Store", cfg.Store, storeEtcd},
		{"EtcdEndpoints", cfg.EtcdEndpoints, strings.Split(threeMembers, ",")},
		{"EtcdPrefix", cfg.EtcdPrefix, defaultEtcdPrefix},
		{"EtcdDialTimeout", cfg.EtcdDialTimeout, defaultEtcdDialTimeout},
		{"LeaderTTL", cfg.LeaderTTL, defaultLeaderTTL},
		{"documented prefix", defaultEtcdPrefix, "/failover-bot/"},
		{"documented dial timeout", defaultEtcdDialTimeout, 5 * time.Second},
		{"documented leader TTL", defaultLeaderTTL, 10 * time.Second},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestEtcdConfigNormalises: STORE is case-insensitive, endpoints are trimmed, deduplicated
// and lose a trailing slash, and ETCD_PREFIX always ends with "/".
func TestEtcdConfigNormalises(t *testing.T) {
	tests := []struct {
		name, key, value string
		got              func(Config) any
		want             any
	}{
		{"STORE upper case", "STORE", " ETCD ", func(c Config) any { return c.Store }, "etcd"},
		{"endpoints trimmed and deduplicated", "ETCD_ENDPOINTS", " https://e1:2379/ ,https://e1:2379,, e2:2379 ",
			func(c Config) any { return c.EtcdEndpoints }, []string{"https://e1:2379", "e2:2379"}},
		{"prefix gets its slash", "ETCD_PREFIX", "/dr/failover-bot", func(c Config) any { return c.EtcdPrefix }, "/dr/failover-bot/"},
		{"prefix kept", "ETCD_PREFIX", "/dr/", func(c Config) any { return c.EtcdPrefix }, "/dr/"},
		{"empty prefix is the default, like every empty variable", "ETCD_PREFIX", "", func(c Config) any { return c.EtcdPrefix }, defaultEtcdPrefix},
		{"leader TTL in the bot's duration syntax", "LEADER_TTL", "30s", func(c Config) any { return c.LeaderTTL }, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadAndValidate(etcdEnv(tt.key, tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.got(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s=%q: got %#v, want %#v", tt.key, tt.value, got, tt.want)
			}
		})
	}
}

// TestEtcdConfigErrors: every refused setting stops the bot with one line that starts with
// the variable, says what is wrong and never repeats a secret.
func TestEtcdConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "etcd-password")
	if err := os.WriteFile(pwFile, []byte(testEtcdPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		env  map[string]string
		want string // "" = valid; else a substring of the error
	}{
		{"valid: plaintext host:port", etcdEnv("ETCD_ENDPOINTS", "10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379"), ""},
		{"valid: http endpoints", etcdEnv("ETCD_ENDPOINTS", "http://etcd1:2379,http://etcd2:2379"), ""},
		{"valid: IPv6", etcdEnv("ETCD_ENDPOINTS", "https://[2001:db8::1]:2379,[2001:db8::2]:2379"), ""},
		{"valid: user and password", etcdEnv("ETCD_USERNAME", "failover-bot", "ETCD_PASSWORD", testEtcdPassword), ""},
		{"valid: password from a file", etcdEnv("ETCD_USERNAME", "failover-bot", "ETCD_PASSWORD_FILE", pwFile), ""},
		{"valid: shortest leader TTL", etcdEnv("LEADER_TTL", "2s", "ETCD_DIAL_TIMEOUT", "1s"), ""},
		{"valid: longest leader TTL", etcdEnv("LEADER_TTL", "5m"), ""},
		{"valid: nested prefix", etcdEnv("ETCD_PREFIX", "/dr/site-b/failover-bot/"), ""},
		{"valid: bbolt with etcd settings at their defaults", with(validEnv(), "ETCD_PREFIX", "/failover-bot", "LEADER_TTL", "10s"), ""},

		{"STORE unknown", with(validEnv(), "STORE", "consul"), `STORE "consul" must be bbolt (one instance, the DB_PATH file) or etcd`},
		{"bbolt with endpoints", with(validEnv(), "ETCD_ENDPOINTS", threeMembers),
			"ETCD_ENDPOINTS is set but STORE is bbolt; set STORE=etcd or unset it"},
		{"bbolt with several settings", with(validEnv(), "ETCD_ENDPOINTS", threeMembers, "ETCD_USERNAME", "fb", "ETCD_PASSWORD", testEtcdPassword),
			"ETCD_ENDPOINTS, ETCD_USERNAME, ETCD_PASSWORD are set but STORE is bbolt; set STORE=etcd or unset them"},
		{"bbolt with a password file", with(validEnv(), "ETCD_PASSWORD_FILE", pwFile), "ETCD_PASSWORD is set but STORE is bbolt"},
		{"bbolt with a leader TTL", with(validEnv(), "LEADER_TTL", "15s"), "LEADER_TTL is set but STORE is bbolt"},
		{"bbolt with a prefix", with(validEnv(), "ETCD_PREFIX", "/other/"), "ETCD_PREFIX is set but STORE is bbolt"},
		{"bbolt with TLS files", with(validEnv(), "ETCD_CA_FILE", "/ca.pem", "ETCD_CERT_FILE", "/c.pem", "ETCD_KEY_FILE", "/k.pem"),
			"ETCD_CA_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE are set but STORE is bbolt"},

		{"no endpoints", etcdEnv("ETCD_ENDPOINTS", "<unset>"), "ETCD_ENDPOINTS is required with STORE=etcd"},
		{"endpoints only commas", etcdEnv("ETCD_ENDPOINTS", " , ,"), "ETCD_ENDPOINTS is required with STORE=etcd"},
		{"host without port", etcdEnv("ETCD_ENDPOINTS", "etcd1"), `ETCD_ENDPOINTS: "etcd1" needs a port, e.g. etcd1.example.com:2379`},
		{"URL without port", etcdEnv("ETCD_ENDPOINTS", "https://etcd1.example.com"), `ETCD_ENDPOINTS: "https://etcd1.example.com" needs a port`},
		{"the bad one among good ones", etcdEnv("ETCD_ENDPOINTS", "https://e1:2379,https://e2,https://e3:2379"), `ETCD_ENDPOINTS: "https://e2" needs a port`},
		{"unix socket", etcdEnv("ETCD_ENDPOINTS", "unix:///run/etcd.sock"), `ETCD_ENDPOINTS: "unix:///run/etcd.sock" must be http://host:port, https://host:port or host:port`},
		{"ftp", etcdEnv("ETCD_ENDPOINTS", "ftp://etcd1:2379"), `"ftp://etcd1:2379" must be http://host:port`},
		{"path", etcdEnv("ETCD_ENDPOINTS", "https://etcd1:2379/v3/kv"), `"https://etcd1:2379/v3/kv" must be only scheme://host:port, without a path`},
		{"query", etcdEnv("ETCD_ENDPOINTS", "https://etcd1:2379?x=1"), "without a path"},
		{"not a URL", etcdEnv("ETCD_ENDPOINTS", "https://[::1"), `"https://[::1" is not a valid URL`},
		{"port zero", etcdEnv("ETCD_ENDPOINTS", "etcd1:0"), `"etcd1:0" has no valid port (1-65535)`},
		{"port too big", etcdEnv("ETCD_ENDPOINTS", "https://etcd1:99999"), `"https://etcd1:99999" has no valid port (1-65535)`},
		{"port not a number", etcdEnv("ETCD_ENDPOINTS", "etcd1:client"), `"etcd1:client" has no valid port`},
		{"no host", etcdEnv("ETCD_ENDPOINTS", ":2379"), `":2379" has no host`},
		{"URL without host", etcdEnv("ETCD_ENDPOINTS", "https://:2379"), `"https://:2379" has no host`},
		{"too many colons", etcdEnv("ETCD_ENDPOINTS", "etcd1:2379:2380"), `"etcd1:2379:2380" is not host:port`},
		{"credentials in the URL", etcdEnv("ETCD_ENDPOINTS", "https://root:"+testEtcdPassword+"@etcd1:2379"),
			`ETCD_ENDPOINTS: "https://…@etcd1:2379" must not contain credentials (use ETCD_USERNAME and ETCD_PASSWORD)`},
		{"credentials before host:port", etcdEnv("ETCD_ENDPOINTS", "root:"+testEtcdPassword+"@etcd1:2379"), `"…@etcd1:2379" must not contain credentials`},
		{"http and https mixed", etcdEnv("ETCD_ENDPOINTS", "http://etcd1:2379,https://etcd2:2379"),
			"ETCD_ENDPOINTS mixes http:// and https://: the client uses the first endpoint's scheme for every member"},
		{"http with a CA file", etcdEnv("ETCD_ENDPOINTS", "http://etcd1:2379", "ETCD_CA_FILE", "/etc/etcd/ca.pem"),
			"ETCD_CA_FILE is set but ETCD_ENDPOINTS uses http://, which turns TLS off: use https:// endpoints"},
		{"http with a client certificate", etcdEnv("ETCD_ENDPOINTS", "http://etcd1:2379", "ETCD_CERT_FILE", "/c.pem", "ETCD_KEY_FILE", "/k.pem"),
			"ETCD_CERT_FILE and ETCD_KEY_FILE are set but ETCD_ENDPOINTS uses http://"},

		{"prefix without leading slash", etcdEnv("ETCD_PREFIX", "failover-bot/"), `ETCD_PREFIX "failover-bot/" must start with /, e.g. /failover-bot/`},
		{"prefix is the root", etcdEnv("ETCD_PREFIX", "/"), `ETCD_PREFIX "/" must not be / alone`},
		{"prefix with a space", etcdEnv("ETCD_PREFIX", "/failover bot/"), `ETCD_PREFIX "/failover bot/" must not contain spaces or control characters`},
		{"prefix only spaces", etcdEnv("ETCD_PREFIX", "   "), "ETCD_PREFIX \"   /\" must not contain spaces"},
		{"prefix with NUL", etcdEnv("ETCD_PREFIX", "/fb\x00/"), `ETCD_PREFIX "/fb\x00/" must not contain spaces or control characters`},
		{"prefix with a newline", etcdEnv("ETCD_PREFIX", "/fb\n"), `ETCD_PREFIX "/fb\n/" must not contain`},
		{"prefix not UTF-8", etcdEnv("ETCD_PREFIX", "/fb\xff/"), "is not valid UTF-8"},
		{"prefix with an empty segment", etcdEnv("ETCD_PREFIX", "/dr//fb/"), `ETCD_PREFIX "/dr//fb/" has an empty path segment (//)`},

		{"password without user", etcdEnv("ETCD_PASSWORD", testEtcdPassword), "ETCD_PASSWORD is set but ETCD_USERNAME is not"},
		{"password file without user", etcdEnv("ETCD_PASSWORD_FILE", pwFile), "ETCD_PASSWORD is set but ETCD_USERNAME is not"},
		{"user without password", etcdEnv("ETCD_USERNAME", "failover-bot"), "ETCD_USERNAME is set but ETCD_PASSWORD is not (or ETCD_PASSWORD_FILE)"},
		{"password and password file", etcdEnv("ETCD_USERNAME", "fb", "ETCD_PASSWORD", testEtcdPassword, "ETCD_PASSWORD_FILE", pwFile),
			"ETCD_PASSWORD and ETCD_PASSWORD_FILE are both set: set only one"},
		{"empty password file", etcdEnv("ETCD_USERNAME", "fb", "ETCD_PASSWORD_FILE", emptyFile), "ETCD_PASSWORD_FILE: " + emptyFile + " is empty"},
		{"missing password file", etcdEnv("ETCD_USERNAME", "fb", "ETCD_PASSWORD_FILE", filepath.Join(dir, "nope")), "ETCD_PASSWORD_FILE: stat "},

		{"dial timeout zero", etcdEnv("ETCD_DIAL_TIMEOUT", "0s"), "ETCD_DIAL_TIMEOUT must be a positive duration, e.g. 5s"},
		{"dial timeout not a duration", etcdEnv("ETCD_DIAL_TIMEOUT", "5"), `ETCD_DIAL_TIMEOUT: "5" is not a duration`},
		{"leader TTL not a duration", etcdEnv("LEADER_TTL", "ten seconds"), `LEADER_TTL: "ten seconds" is not a duration`},
		{"leader TTL fractional", etcdEnv("LEADER_TTL", "2500ms"), "LEADER_TTL 2.5s must be whole seconds (etcd leases count in seconds), e.g. 10s"},
		{"leader TTL one second", etcdEnv("LEADER_TTL", "1s", "ETCD_DIAL_TIMEOUT", "500ms"), "LEADER_TTL 1s is shorter than 2s"},
		{"leader TTL zero", etcdEnv("LEADER_TTL", "0s"), "LEADER_TTL 0s is shorter than 2s"},
		{"leader TTL too long", etcdEnv("LEADER_TTL", "10m"), "LEADER_TTL 10m0s is longer than 5m: after the leader dies a standby waits"},
		{"leader TTL in days", etcdEnv("LEADER_TTL", "1d"), "LEADER_TTL 24h0m0s is longer than 5m"},
		{"dial timeout as long as the lease", etcdEnv("LEADER_TTL", "5s"),
			"ETCD_DIAL_TIMEOUT 5s must be at least 1s shorter than LEADER_TTL 5s"},
		{"dial timeout with the shortest lease", etcdEnv("LEADER_TTL", "2s", "ETCD_DIAL_TIMEOUT", "1500ms"),
			"ETCD_DIAL_TIMEOUT 1.5s must be at least 1s shorter than LEADER_TTL 2s"},

		{"client certificate without key", etcdEnv("ETCD_CERT_FILE", "/etc/etcd/client.pem"),
			"ETCD_CERT_FILE is set but ETCD_KEY_FILE is not: a client certificate needs its key (set both or neither)"},
		{"client key without certificate", etcdEnv("ETCD_KEY_FILE", "/etc/etcd/client-key.pem"),
			"ETCD_KEY_FILE is set but ETCD_CERT_FILE is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadAndValidate(tt.env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want a valid configuration", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("configuration accepted, want an error containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error\n got %q\nwant it to contain %q", msg, tt.want)
			}
			assertCleanError(t, msg)
		})
	}
}

// TestEtcdConfigTLSFiles: the TLS files are read and parsed at start, and each problem names
// the variable, says what is wrong and quotes nothing of the file.
func TestEtcdConfigTLSFiles(t *testing.T) {
	p := newTestPKI(t)
	certFile, keyFile := p.client("client", nil)
	expiredCert, expiredKey := p.client("expired", func(c *x509.Certificate) { c.NotAfter = p.base.Add(-time.Minute) })
	futureCert, futureKey := p.client("future", func(c *x509.Certificate) { c.NotBefore = p.base.Add(time.Hour) })
	serverOnlyCert, serverOnlyKey := p.client("server-only", func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	anyUseCert, anyUseKey := p.client("any-use", func(c *x509.Certificate) { c.ExtKeyUsage = nil })
	_, otherKey := p.client("other", nil)

	keyDER := pemBlocks(p.read(keyFile))[0].Bytes
	encryptedPKCS8 := p.write("encrypted-pkcs8.key", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: keyDER})
	encryptedLegacy := p.write("encrypted-legacy.key", &pem.Block{Type: "EC PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: keyDER})
	combined := p.writeRaw("combined.pem", append(p.read(certFile), p.read(keyFile)...))
	garbageCert := p.write("garbage.crt", &pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER at all")})
	notPEM := p.writeRaw("not-pem.txt", []byte("this is a note, not a certificate\n"))
	huge := p.writeRaw("huge.pem", bytes.Repeat([]byte("A"), pemFileMaxBytes+1))

	expiredCAKey := p.newKey()
	expiredCATmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "old CA"},
		NotBefore: p.base.Add(-48 * time.Hour), NotAfter: p.base.Add(-24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	expiredCADER, err := x509.CreateCertificate(rand.Reader, expiredCATmpl, expiredCATmpl, &expiredCAKey.PublicKey, expiredCAKey)
	if err != nil {
		t.Fatal(err)
	}
	expiredCA := p.write("expired-ca.pem", certBlock(expiredCADER))
	bundleWithExpired := p.writeRaw("bundle.pem", append(p.read(expiredCA), p.read(p.caFile)...))

	tests := []struct {
		name             string
		ca, cert, key    string
		endpoints        string        // default: three https members
		at               time.Duration // after p.base
		want             string        // "" = valid
		wantRoots, wantC bool          // for valid rows: RootCAs set, a client certificate set
	}{
		{name: "CA and client pair", ca: p.caFile, cert: certFile, key: keyFile, wantRoots: true, wantC: true},
		{name: "CA only", ca: p.caFile, wantRoots: true},
		{name: "client pair, system roots", cert: certFile, key: keyFile, wantC: true},
		{name: "https without files: system roots", wantRoots: false},
		{name: "host:port with a CA turns TLS on", ca: p.caFile, endpoints: "10.0.0.1:2379,10.0.0.2:2379", wantRoots: true},
		{name: "bundle with one expired CA", ca: bundleWithExpired, wantRoots: true},
		{name: "certificate without extended key usage", cert: anyUseCert, key: anyUseKey, wantC: true},
		{name: "certificate and key in one file", cert: combined, key: combined, wantC: true},

		{name: "CA file missing", ca: filepath.Join(p.dir, "nope.pem"), want: "ETCD_CA_FILE: stat " + filepath.Join(p.dir, "nope.pem") + ": no such file or directory"},
		{name: "CA file is a directory", ca: p.dir, want: "ETCD_CA_FILE: " + p.dir + " is a directory, not a PEM file"},
		{name: "CA file not PEM", ca: notPEM, want: "ETCD_CA_FILE: " + notPEM + " holds no PEM certificate"},
		{name: "CA file huge", ca: huge, want: "ETCD_CA_FILE: " + huge + " is larger than 1048576 bytes"},
		{name: "CA file holds a key", ca: combined, want: "ETCD_CA_FILE: " + combined + " holds a private key; it must hold only the CA certificates"},
		{name: "CA certificate unreadable", ca: garbageCert, want: "ETCD_CA_FILE: " + garbageCert + ": certificate 1 cannot be read: x509:"},
		{name: "CA expired", ca: expiredCA, want: "ETCD_CA_FILE: " + expiredCA + ": every certificate in it has expired (the last on " +
			p.base.Add(-24*time.Hour).Format(time.RFC3339) + ")"},
		{name: "CA expired later", ca: p.caFile, at: 31 * 24 * time.Hour, want: "ETCD_CA_FILE: " + p.caFile + ": every certificate in it has expired"},

		{name: "certificate file missing", cert: filepath.Join(p.dir, "gone.crt"), key: keyFile, want: "ETCD_CERT_FILE: stat "},
		{name: "key file missing", cert: certFile, key: filepath.Join(p.dir, "gone.key"), want: "ETCD_KEY_FILE: stat "},
		{name: "files swapped", cert: keyFile, key: certFile,
			want: "ETCD_CERT_FILE " + keyFile + " holds a private key but no certificate (are ETCD_CERT_FILE and ETCD_KEY_FILE swapped?); ETCD_KEY_FILE " + certFile + " holds a certificate but no private key"},
		{name: "certificate file not PEM", cert: notPEM, key: keyFile, want: "ETCD_CERT_FILE " + notPEM + " holds no PEM certificate"},
		{name: "key file not PEM", cert: certFile, key: notPEM, want: "ETCD_KEY_FILE " + notPEM + " holds no PEM private key"},
		{name: "certificate unreadable", cert: garbageCert, key: keyFile, want: "ETCD_CERT_FILE " + garbageCert + " cannot be read: x509:"},
		{name: "certificate expired", cert: expiredCert, key: expiredKey,
			want: "ETCD_CERT_FILE " + expiredCert + " expired on " + p.base.Add(-time.Minute).Format(time.RFC3339)},
		{name: "certificate expires while the bot is down", cert: certFile, key: keyFile, at: 25 * time.Hour,
			want: "ETCD_CERT_FILE " + certFile + " expired on " + p.base.Add(24*time.Hour).Format(time.RFC3339)},
		{name: "certificate not yet valid", cert: futureCert, key: futureKey,
			want: "ETCD_CERT_FILE " + futureCert + " is not valid before " + p.base.Add(time.Hour).Format(time.RFC3339) + " (is this machine's clock right?)"},
		{name: "server certificate", cert: serverOnlyCert, key: serverOnlyKey,
			want: "ETCD_CERT_FILE " + serverOnlyCert + " is not a client certificate: its extended key usage lacks clientAuth"},
		{name: "key encrypted (PKCS #8)", cert: certFile, key: encryptedPKCS8, want: "ETCD_KEY_FILE " + encryptedPKCS8 + " is encrypted with a passphrase"},
		{name: "key encrypted (OpenSSL legacy)", cert: certFile, key: encryptedLegacy, want: "ETCD_KEY_FILE " + encryptedLegacy + " is encrypted with a passphrase"},
		{name: "key of another certificate", cert: certFile, key: otherKey,
			want: "ETCD_CERT_FILE and ETCD_KEY_FILE do not form a key pair: tls: private key does not match public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoints := threeMembers
			if tt.endpoints != "" {
				endpoints = tt.endpoints
			}
			env := etcdEnv("ETCD_ENDPOINTS", endpoints)
			for k, v := range map[string]string{"ETCD_CA_FILE": tt.ca, "ETCD_CERT_FILE": tt.cert, "ETCD_KEY_FILE": tt.key} {
				if v != "" {
					env[k] = v
				}
			}
			cfg, err := LoadConfig(lookupFrom(env), false)
			if err != nil {
				t.Fatal(err)
			}
			problems := &ConfigError{}
			tlsConfig := cfg.etcdSettings(problems, p.base.Add(tt.at))
			if tt.want != "" {
				err := problems.err()
				if err == nil {
					t.Fatalf("TLS files accepted, want an error containing %q", tt.want)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error\n got %q\nwant it to contain %q", err, tt.want)
				}
				assertCleanError(t, err.Error(), tt.ca, tt.cert, tt.key)
				return
			}
			if err := problems.err(); err != nil {
				t.Fatal(err)
			}
			if tlsConfig == nil {
				t.Fatal("no TLS configuration, want one")
			}
			if got := tlsConfig.RootCAs != nil; got != tt.wantRoots {
				t.Errorf("RootCAs set = %v, want %v (nil means the system roots)", got, tt.wantRoots)
			}
			if got := len(tlsConfig.Certificates) == 1; got != tt.wantC {
				t.Errorf("client certificates %d, want one = %v", len(tlsConfig.Certificates), tt.wantC)
			}
			if tlsConfig.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion %x, want TLS 1.2", tlsConfig.MinVersion)
			}
			// The check at start is the one Validate runs; the files are valid now too.
			if err := cfg.Validate(false); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// TestEtcdClientConfig: the client configuration carries what was configured, TLS only when
// asked for, a silent logger, and keep-alives etcd accepts; without STORE=etcd or with a
// file gone since start there is no client configuration.
func TestEtcdClientConfig(t *testing.T) {
	p := newTestPKI(t)
	certFile, keyFile := p.client("client", nil)

	t.Run("everything", func(t *testing.T) {
		cfg, err := loadAndValidate(etcdEnv("ETCD_CA_FILE", p.caFile, "ETCD_CERT_FILE", certFile, "ETCD_KEY_FILE", keyFile,
			"ETCD_USERNAME", "failover-bot", "ETCD_PASSWORD", testEtcdPassword, "ETCD_DIAL_TIMEOUT", "3s", "LEADER_TTL", "15s"))
		if err != nil {
			t.Fatal(err)
		}
		cc, err := cfg.etcdClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"Endpoints", cc.Endpoints, strings.Split(threeMembers, ",")},
			{"DialTimeout", cc.DialTimeout, 3 * time.Second},
			{"DialKeepAliveTime", cc.DialKeepAliveTime, 10 * time.Second},
			{"DialKeepAliveTimeout", cc.DialKeepAliveTimeout, 5 * time.Second},
			{"PermitWithoutStream", cc.PermitWithoutStream, false},
			{"AutoSyncInterval", cc.AutoSyncInterval, time.Duration(0)},
			{"RejectOldCluster", cc.RejectOldCluster, false},
			{"Username", cc.Username, "failover-bot"},
			{"Password", cc.Password, testEtcdPassword},
			{"Token", cc.Token, ""},
			{"TLS set", cc.TLS != nil, true},
			{"logger set", cc.Logger != nil, true},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
			}
		}
		if cc.TLS == nil {
			return
		}
		want := x509.NewCertPool()
		want.AddCert(p.ca)
		if !cc.TLS.RootCAs.Equal(want) {
			t.Error("RootCAs is not the ETCD_CA_FILE pool")
		}
		if len(cc.TLS.Certificates) != 1 || cc.TLS.Certificates[0].Leaf == nil || cc.TLS.Certificates[0].Leaf.Subject.CommonName != "failover-bot" {
			t.Errorf("client certificate not the ETCD_CERT_FILE one: %d certificates", len(cc.TLS.Certificates))
		}
		if cc.TLS.ServerName != "" || cc.TLS.InsecureSkipVerify {
			t.Errorf("ServerName %q, InsecureSkipVerify %v: the client must check each member's own name", cc.TLS.ServerName, cc.TLS.InsecureSkipVerify)
		}
		for _, level := range []zapcore.Level{zapcore.DebugLevel, zapcore.ErrorLevel, zapcore.FatalLevel} {
			if cc.Logger.Core().Enabled(level) {
				t.Errorf("the client logger logs at %v: want zap's no-op logger, so the client does not write to stderr", level)
			}
		}
		// Endpoints is a copy: the client may reorder it.
		cc.Endpoints[0] = "changed:1"
		if cfg.EtcdEndpoints[0] == "changed:1" {
			t.Error("client config shares the Config's endpoint slice")
		}
	})

	t.Run("plaintext", func(t *testing.T) {
		cfg, err := loadAndValidate(etcdEnv("ETCD_ENDPOINTS", "127.0.0.1:2379"))
		if err != nil {
			t.Fatal(err)
		}
		cc, err := cfg.etcdClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cc.TLS != nil || cc.Username != "" || cc.Password != "" {
			t.Errorf("plaintext without auth: TLS %v, user %q, password set %v", cc.TLS != nil, cc.Username, cc.Password != "")
		}
		// A 5,000-VM request is written in one transaction of a few MiB: the client must not
		// refuse it before etcd (whose --max-request-bytes is the limit that counts) sees it.
		if cc.MaxCallSendMsgSize < 16<<20 {
			t.Errorf("client send limit %d bytes, want at least 16 MiB", cc.MaxCallSendMsgSize)
		}
	})

	t.Run("bbolt", func(t *testing.T) {
		cfg, err := loadAndValidate(validEnv())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.etcdClientConfig(); err == nil || !strings.Contains(err.Error(), `STORE is "bbolt"`) {
			t.Errorf("got %v, want a refusal naming STORE", err)
		}
	})

	t.Run("CA file removed after start", func(t *testing.T) {
		ca := p.writeRaw("ca-copy.pem", p.read(p.caFile))
		cfg, err := loadAndValidate(etcdEnv("ETCD_CA_FILE", ca, "ETCD_USERNAME", "fb", "ETCD_PASSWORD", testEtcdPassword))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(ca); err != nil {
			t.Fatal(err)
		}
		_, err = cfg.etcdClientConfig()
		if err == nil || !strings.HasPrefix(err.Error(), "configuration: ETCD_CA_FILE: stat ") {
			t.Fatalf("got %v, want an error naming ETCD_CA_FILE", err)
		}
		assertCleanError(t, err.Error())
	})
}

// TestEtcdConfigTLSHandshake: the TLS configuration built from the files completes a real
// handshake with a server that requires a client certificate from the same CA, and a
// certificate from another CA is refused.
func TestEtcdConfigTLSHandshake(t *testing.T) {
	p := newTestPKI(t)
	serverCert, serverKey := p.server()
	pair, err := tls.LoadX509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(p.ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// The server answers each connection with the client certificate's common name.
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				tc := conn.(*tls.Conn)
				if tc.Handshake() == nil {
					fmt.Fprintln(tc, tc.ConnectionState().PeerCertificates[0].Subject.CommonName)
				}
			}()
		}
	}()

	other := newTestPKI(t)
	strangerCert, strangerKey := other.client("stranger", nil)
	certFile, keyFile := p.client("client", nil)
	tests := []struct {
		name, cert, key string
		want            string // the common name the server saw; "" = refused
	}{
		{"client certificate of the cluster's CA", certFile, keyFile, "failover-bot"},
		{"client certificate of another CA", strangerCert, strangerKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadAndValidate(etcdEnv("ETCD_ENDPOINTS", "https://"+ln.Addr().String(),
				"ETCD_CA_FILE", p.caFile, "ETCD_CERT_FILE", tt.cert, "ETCD_KEY_FILE", tt.key))
			if err != nil {
				t.Fatal(err)
			}
			cc, err := cfg.etcdClientConfig()
			if err != nil {
				t.Fatal(err)
			}
			// gRPC sets the server name from each endpoint; do as it does.
			tlsConfig := cc.TLS.Clone()
			tlsConfig.ServerName = "127.0.0.1"
			conn, err := tls.Dial("tcp", ln.Addr().String(), tlsConfig)
			if err != nil {
				if tt.want == "" {
					return // refused during the handshake (TLS 1.2 reports it here)
				}
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			var got string
			_, readErr := fmt.Fscanln(conn, &got)
			if tt.want == "" {
				if readErr == nil {
					t.Fatalf("server accepted a certificate of another CA (saw %q)", got)
				}
				return
			}
			if readErr != nil || got != tt.want {
				t.Fatalf("server saw %q (%v), want %q", got, readErr, tt.want)
			}
		})
	}
}

// TestEtcdConfigAgainstRealEtcd runs Debian's etcd (3.4) with TLS and client-certificate
// authentication, enables etcd's user authentication, and connects through
// etcdClientConfig with the v3.7 client: the right password writes under ETCD_PREFIX, a wrong
// one is refused without echoing it, and etcd grants LEADER_TTL as asked but raises a 1 s
// lease to minLeaderTTL.
func TestEtcdConfigAgainstRealEtcd(t *testing.T) {
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (Debian: apt-get install etcd-server)")
	}
	p := newTestPKI(t)
	serverCert, serverKey := p.server()
	certFile, keyFile := p.client("client", nil)
	clientPort, peerPort := freePort(t), freePort(t)
	clientURL := fmt.Sprintf("https://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	var etcdLog bytes.Buffer
	cmd := exec.Command(etcdBin,
		"--name", "test", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "test="+peerURL,
		"--cert-file", serverCert, "--key-file", serverKey, "--trusted-ca-file", p.caFile, "--client-cert-auth",
		"--logger", "zap", "--log-level", "error")
	cmd.Stdout, cmd.Stderr = &etcdLog, &etcdLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("etcd log:\n%s", etcdLog.String())
		}
	})

	connect := func(t *testing.T, kv ...string) (*clientv3.Client, Config, error) {
		t.Helper()
		cfg, err := loadAndValidate(etcdEnv(append([]string{"ETCD_ENDPOINTS", clientURL, "ETCD_PREFIX", "/failover-bot-test",
			"ETCD_CA_FILE", p.caFile, "ETCD_CERT_FILE", certFile, "ETCD_KEY_FILE", keyFile}, kv...)...))
		if err != nil {
			t.Fatal(err)
		}
		cc, err := cfg.etcdClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cli, err := clientv3.New(cc)
		if err == nil {
			t.Cleanup(func() { cli.Close() })
		}
		return cli, cfg, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Before authentication is on, the client certificate is enough: create the user.
	admin, _, err := connect(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", testEtcdPassword); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setting up etcd authentication: %v", err)
		}
	}

	pwFile := p.writeRaw("etcd-password", []byte(testEtcdPassword+"\n"))
	cli, cfg, err := connect(t, "ETCD_USERNAME", "root", "ETCD_PASSWORD_FILE", pwFile)
	if err != nil {
		t.Fatalf("connect with the password: %v", err)
	}
	if cfg.EtcdPrefix != "/failover-bot-test/" {
		t.Fatalf("prefix %q", cfg.EtcdPrefix)
	}
	key := cfg.EtcdPrefix + "probe"
	if _, err := cli.Put(ctx, key, "written by the config test"); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
	resp, err := cli.Get(ctx, cfg.EtcdPrefix, clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != key {
		t.Fatalf("Get under the prefix: %v, %v", resp, err)
	}
	for _, tc := range []struct {
		ask, want int64
	}{
		{int64(cfg.LeaderTTL / time.Second), 10},
		{1, int64(minLeaderTTL / time.Second)},
	} {
		lease, err := cli.Grant(ctx, tc.ask)
		if err != nil {
			t.Fatalf("Grant(%d): %v", tc.ask, err)
		}
		if lease.TTL != tc.want {
			t.Errorf("etcd granted a %d s lease for %d s asked, want %d s", lease.TTL, tc.ask, tc.want)
		}
	}

	_, _, err = connect(t, "ETCD_USERNAME", "root", "ETCD_PASSWORD", "wrong-"+testEtcdPassword)
	if !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Fatalf("wrong password: got %v, want %v", err, rpctypes.ErrAuthFailed)
	}
	assertCleanError(t, err.Error())
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestEtcdConfigNeverPrintsPassword: the printed and logged configuration says whether TLS
// and authentication are configured, never the password, even typed into an endpoint URL.
func TestEtcdConfigNeverPrintsPassword(t *testing.T) {
	env := etcdEnv("ETCD_ENDPOINTS", threeMembers+",https://root:"+testEtcdPassword+"@etcd4.example.com:2379",
		"ETCD_CA_FILE", "/etc/etcd/ca.pem", "ETCD_USERNAME", "failover-bot", "ETCD_PASSWORD", testEtcdPassword)
	cfg, err := LoadConfig(lookupFrom(env), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(false); err == nil {
		t.Fatal("credentials in ETCD_ENDPOINTS accepted")
	} else {
		assertCleanError(t, err.Error())
	}
	var logged, text bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg, "password", cfg.EtcdPassword)
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "config", cfg)
	// A configuration that passes Validate holds no endpoint credentials; its JSON still
	// hides the password.
	valid, err := loadAndValidate(etcdEnv("ETCD_USERNAME", "failover-bot", "ETCD_PASSWORD", testEtcdPassword))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(valid)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String()":  cfg.String(),
		"%v":        fmt.Sprintf("%v", cfg),
		"%+v":       fmt.Sprintf("%+v", cfg),
		"%#v":       fmt.Sprintf("%#v", cfg),
		"slog JSON": logged.String(),
		"slog text": text.String(),
		"json":      string(js),
		"warnings":  strings.Join(cfg.Warnings(), " "),
	}
	for name, out := range outputs {
		if strings.Contains(out, testEtcdPassword) {
			t.Errorf("%s contains the etcd password: %s", name, out)
		}
	}
	for _, want := range []string{
		"STORE=etcd",
		"ETCD_ENDPOINTS=" + threeMembers + ",https://…@etcd4.example.com:2379",
		"ETCD_PREFIX=/failover-bot/",
		"ETCD_CA_FILE=/etc/etcd/ca.pem",
		"ETCD_CERT_FILE= ",
		"ETCD_USERNAME=failover-bot",
		"ETCD_PASSWORD=[REDACTED]",
		"ETCD_DIAL_TIMEOUT=5s",
		"LEADER_TTL=10s",
	} {
		if !strings.Contains(cfg.String(), want) {
			t.Errorf("String() = %q, want it to contain %q", cfg.String(), want)
		}
	}
	if !strings.Contains(logged.String(), `"ETCD_PASSWORD":"[REDACTED]"`) {
		t.Errorf("slog output lacks the redacted etcd password: %s", logged.String())
	}

	// On bbolt the etcd settings are noise, except when set (and then refused).
	bolt, err := LoadConfig(lookupFrom(validEnv()), false)
	if err != nil {
		t.Fatal(err)
	}
	if s := bolt.String(); !strings.HasSuffix(s, " STORE=bbolt") || strings.Contains(s, "ETCD_") || strings.Contains(s, "LEADER_TTL") {
		t.Errorf("bbolt String() = %q, want STORE=bbolt and no etcd settings", s)
	}
	refused, err := LoadConfig(lookupFrom(with(validEnv(), "ETCD_ENDPOINTS", "etcd1:2379")), false)
	if err != nil {
		t.Fatal(err)
	}
	if s := refused.String(); !strings.Contains(s, "STORE=bbolt ETCD_ENDPOINTS=etcd1:2379") {
		t.Errorf("refused bbolt String() = %q, want it to show the etcd settings that were set", s)
	}
}

// TestEtcdConfigWarnings: configurations that work but put an HA deployment at risk are
// logged at start; a development etcd on this machine is not nagged.
func TestEtcdConfigWarnings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings, one per warning, in order
	}{
		{"three TLS members", etcdEnv("ETCD_USERNAME", "fb", "ETCD_PASSWORD", testEtcdPassword), nil},
		{"password in clear text", etcdEnv("ETCD_ENDPOINTS", "http://etcd1:2379,http://etcd2:2379", "ETCD_USERNAME", "fb", "ETCD_PASSWORD", testEtcdPassword),
			[]string{"ETCD_PASSWORD goes to etcd in clear text: ETCD_ENDPOINTS are not TLS; use https:// endpoints"}},
		{"password over host:port without TLS files", etcdEnv("ETCD_ENDPOINTS", "etcd1:2379,etcd2:2379", "ETCD_USERNAME", "fb", "ETCD_PASSWORD", testEtcdPassword),
			[]string{"ETCD_PASSWORD goes to etcd in clear text"}},
		{"one member", etcdEnv("ETCD_ENDPOINTS", "https://etcd1.example.com:2379"),
			[]string{"ETCD_ENDPOINTS lists one endpoint (https://etcd1.example.com:2379): the bot reaches etcd only through it"}},
		{"one member in clear text", etcdEnv("ETCD_ENDPOINTS", "etcd1:2379", "ETCD_USERNAME", "fb", "ETCD_PASSWORD", testEtcdPassword),
			[]string{"in clear text", "lists one endpoint (etcd1:2379)"}},
		{"development etcd on loopback", etcdEnv("ETCD_ENDPOINTS", "http://127.0.0.1:2379", "ETCD_USERNAME", "fb", "ETCD_PASSWORD", testEtcdPassword), nil},
		{"localhost and ::1", etcdEnv("ETCD_ENDPOINTS", "localhost:2379,[::1]:2379"), nil},
		{"bbolt", validEnv(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadAndValidate(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("warnings %q, want %d containing %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
				}
				assertCleanError(t, got[i])
			}
		})
	}
}

// TestConfigUsageListsEveryVariable: `failover-bot -h` names every variable Config reads.
func TestConfigUsageListsEveryVariable(t *testing.T) {
	var b bytes.Buffer
	usage(&b, flag.NewFlagSet("failover-bot", flag.ContinueOnError))
	for _, key := range envKeys(reflect.TypeFor[Config]()) {
		if !strings.Contains(b.String(), key) {
			t.Errorf("usage text does not list %s", key)
		}
	}
}
