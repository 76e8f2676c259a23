// Command fakes is .ci/image's stand-in for the world around a failover-bot container: the
// recording Slack Web API fake (bot/slackfake) and the Enterprise Manager simulator (emapi/emsim)
// with the console's demo site, served on loopback so a container on the host network reaches
// them, plus a Slack client that sends a signed slash command to the container. It is a CI tool,
// never part of the product binary or the image (.ci is outside the build context).
//
//	fakes serve -secrets DIR -users U1,U2 -out FILE [-want-post CHANNEL:TEXT]
//	fakes slash -url URL -secrets DIR -team T -user U -channel C -response-url URL -text TEXT -want TEXT
//
// serve reads the bot token, signing secret and EM password from DIR (the files the container
// gets as SLACK_BOT_TOKEN_FILE, SLACK_SIGNING_SECRET_FILE and EM_PASSWORD_FILE), writes the
// addresses the bot needs to FILE once it listens (SLACK_API_URL, EM_URL, EM_USERNAME,
// LISTEN_ADDR on a free loopback port, RESPONSE_URL for the slash command), and serves until
// SIGTERM or SIGINT. It then prints what it was asked and exits 1 unless the bot did what a
// healthy serve-mode start and clean stop do: Slack's auth.test, an EM logon and, at shutdown,
// the EM logoff, and (with -want-post) a channel message containing TEXT.
//
// slash first sends the command signed with a wrong secret and requires 401, then sends it
// signed with the real one and requires 200 with an answer containing -want.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/failover-bot/failover-bot/bot/slackfake"
	"github.com/failover-bot/failover-bot/emapi/emsim"
)

// Secret file names in the -secrets directory, the same files the container mounts.
const (
	botTokenFile      = "slack_bot_token"
	signingSecretFile = "slack_signing_secret"
	emPasswordFile    = "em_password"
	emUsername        = "ci-operator"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fakes serve|slash [flags] (see the package comment)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "slash":
		err = slash(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: use serve or slash", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakes %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// readSecret reads one secret file, without its trailing newline.
func readSecret(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", filepath.Join(dir, name))
	}
	return s, nil
}

// tb is the testing.TB that slackfake.New takes: the fake calls only Helper and Cleanup on it
// (Cleanup registers its listener's Close, run here at exit). The embedded nil interface makes
// any other call panic, so a change in slackfake's use of it shows at once instead of passing
// silently.
type tb struct {
	testing.TB
	cleanups []func()
}

func (t *tb) Helper()          {}
func (t *tb) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *tb) close() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}

// expectation is one thing serve checks after the signal.
type expectation struct {
	what string
	met  bool
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	secrets := fs.String("secrets", "", "directory holding the secret files")
	users := fs.String("users", "", "comma-separated Slack user IDs users.info knows")
	out := fs.String("out", "", "file to write the bot's addresses to once listening")
	wantPost := fs.String("want-post", "", "CHANNEL:TEXT a channel message must contain by the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secrets == "" || *out == "" {
		return errors.New("-secrets and -out are required")
	}
	password, err := readSecret(*secrets, emPasswordFile)
	if err != nil {
		return err
	}
	if _, err := readSecret(*secrets, botTokenFile); err != nil {
		return err
	}

	t := &tb{}
	defer t.close()
	sl := slackfake.New(t)
	for _, id := range strings.Split(*users, ",") {
		if id = strings.TrimSpace(id); id != "" {
			sl.AddUser(slack.User{ID: id, Name: strings.ToLower(id), RealName: "CI " + id, TZ: "UTC"})
		}
	}

	sim := emsim.New(emsim.Config{Username: emUsername, Password: password}, emsim.DemoSite())
	el, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	esrv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = esrv.Serve(el) }()
	defer esrv.Close()

	listen, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	env := strings.Join([]string{
		"SLACK_API_URL=" + sl.APIURL(),
		"EM_URL=http://" + el.Addr().String() + "/api/",
		"EM_USERNAME=" + emUsername,
		"LISTEN_ADDR=" + listen,
		"RESPONSE_URL=" + sl.ResponseURL("ci-slash"),
	}, "\n") + "\n"
	if err := writeAtomic(*out, []byte(env)); err != nil {
		return err
	}
	fmt.Printf("fakes: Slack at %s, EM at http://%s/api/, bot to listen on %s\n", sl.APIURL(), el.Addr(), listen)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs

	methods := map[string]int{}
	for _, c := range sl.Calls() {
		methods[c.Method]++
	}
	fmt.Printf("fakes: Slack calls: %s\n", countSummary(methods))
	endpoints := map[string]int{}
	for _, r := range sim.Requests() {
		endpoints[r.Method+" "+emEndpoint(r.Path)]++
	}
	fmt.Printf("fakes: EM requests: %s\n", countSummary(endpoints))

	checks := []expectation{
		{"Slack auth.test (serve mode's start and /healthz)", methods["auth.test"] > 0},
		{"EM logon (POST /api/sessionMngr/)", sim.Logons() > 0},
		{"EM logoff at shutdown (DELETE /api/logonSessions/…)", sim.Count(http.MethodDelete, "/logonSessions/") > 0},
	}
	if *wantPost != "" {
		channel, text, ok := strings.Cut(*wantPost, ":")
		if !ok {
			return fmt.Errorf("-want-post %q: want CHANNEL:TEXT", *wantPost)
		}
		found := false
		for _, m := range sl.Messages(channel) {
			if !m.Ephemeral && (strings.Contains(m.Text, text) || bytes.Contains(m.Blocks, []byte(text))) {
				found = true
			}
		}
		checks = append(checks, expectation{fmt.Sprintf("a message in %s containing %q", channel, text), found})
	}
	var missing []string
	for _, c := range checks {
		if !c.met {
			missing = append(missing, c.what)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the bot never made: %s", strings.Join(missing, "; "))
	}
	fmt.Printf("fakes: all %d expectations met\n", len(checks))
	return nil
}

// idSegment matches the path segments that are IDs: GUIDs and EM's task-N.
var idSegment = regexp.MustCompile(`^([0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|task-[0-9]+)$`)

// emEndpoint turns a request path into its endpoint with IDs as {id}, so the summary stays short.
func emEndpoint(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if idSegment.MatchString(p) {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func countSummary(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// freeLoopbackPort returns a loopback address whose port was free a moment ago, for the bot's
// LISTEN_ADDR. The bot binds it seconds later; on the host network nothing else here takes
// ephemeral ports that fast.
func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// writeAtomic writes a file readers see whole or not at all.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func slash(args []string) error {
	fs := flag.NewFlagSet("slash", flag.ContinueOnError)
	target := fs.String("url", "", "the bot's /slack/commands URL")
	secrets := fs.String("secrets", "", "directory holding the secret files")
	team := fs.String("team", slackfake.TeamID, "team_id")
	user := fs.String("user", "", "user_id")
	channel := fs.String("channel", "", "channel_id")
	responseURL := fs.String("response-url", "", "response_url")
	text := fs.String("text", "", "the command's text")
	want := fs.String("want", "", "text the answer must contain")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" || *secrets == "" || *user == "" || *channel == "" {
		return errors.New("-url, -secrets, -user and -channel are required")
	}
	secret, err := readSecret(*secrets, signingSecretFile)
	if err != nil {
		return err
	}
	trigger := make([]byte, 8)
	_, _ = rand.Read(trigger)
	body := url.Values{
		"team_id":      {*team},
		"channel_id":   {*channel},
		"user_id":      {*user},
		"user_name":    {"ci-" + strings.ToLower(*user)},
		"command":      {"/failover"},
		"text":         {*text},
		"response_url": {*responseURL},
		"trigger_id":   {"ci." + hex.EncodeToString(trigger)},
		"api_app_id":   {"A0CIIMAGE"},
	}.Encode()
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()

	status, _, err := post(ctx, client, *target, "not-"+secret, body)
	if err != nil {
		return err
	}
	if status != http.StatusUnauthorized {
		return fmt.Errorf("a command signed with the wrong secret got HTTP %d, want 401", status)
	}
	fmt.Println("slash: a command signed with the wrong secret was refused: HTTP 401")

	status, answer, err := post(ctx, client, *target, secret, body)
	if err != nil {
		return err
	}
	var resp struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if status != http.StatusOK {
		return fmt.Errorf("the signed command got HTTP %d: %s", status, strings.TrimSpace(string(answer)))
	}
	if err := json.Unmarshal(answer, &resp); err != nil {
		return fmt.Errorf("the answer is not Slack's JSON: %v: %q", err, answer)
	}
	fmt.Printf("slash: HTTP 200 %s: %s\n", resp.ResponseType, firstLine(resp.Text))
	if !strings.Contains(resp.Text, *want) {
		return fmt.Errorf("the answer does not contain %q: %q", *want, resp.Text)
	}
	return nil
}

// post sends one slash command signed as Slack signs (slack-notes.md, "Request signing"),
// written here from the published algorithm rather than borrowed from the bot, so a mistake in
// the bot's verifier cannot hide behind the same code.
func post(ctx context.Context, c *http.Client, target, secret, body string) (int, []byte, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, "v0:"+ts+":"+body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, b, err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
