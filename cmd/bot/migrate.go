package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/failover-bot/failover-bot/store"
)

// `failover-bot migrate` copies a whole store between the backends, audit chain included, and
// checks the copy (store.Copy): bbolt → etcd to move to several instances, etcd → bbolt to go
// back to one, or to restore an etcd backup (a bbolt file) into etcd. The bbolt side is named on
// the command line; the etcd side is always the ETCD_* settings, whatever STORE says, so the
// same environment serves the bot before and after the move. Nothing may write to either side
// meanwhile: a bbolt source held by a running bot is refused (its file lock), and so is an etcd
// store with a running instance (its election key).

const migrateUsage = `usage: failover-bot migrate --from bbolt:<file> --to etcd
       failover-bot migrate --from etcd --to bbolt:<new file>

Copies every record of a store, audit log included, into an empty store of the other backend,
then checks that both hold the same and that the copy's hash chain verifies. The etcd side is
ETCD_ENDPOINTS and ETCD_PREFIX (with the ETCD_* TLS and user settings); STORE is not consulted.
Stop every bot first. The destination must be empty: a new etcd prefix, or a bbolt file that
does not exist yet. The source is left as it was.
`

// migrateEnd is one side of a migration: etcd, or the bbolt file path.
type migrateEnd struct {
	etcd bool
	path string
}

func (m migrateEnd) String() string {
	if m.etcd {
		return "etcd"
	}
	return "bbolt:" + m.path
}

// parseMigrateEnd reads --from or --to: "etcd" or "bbolt:<file>".
func parseMigrateEnd(name, v string) (migrateEnd, error) {
	switch {
	case v == "":
		return migrateEnd{}, fmt.Errorf("--%s is required: etcd or bbolt:<file>", name)
	case v == storeEtcd:
		return migrateEnd{etcd: true}, nil
	case strings.HasPrefix(v, storeEtcd+":"):
		return migrateEnd{}, fmt.Errorf("--%s %q: write etcd alone; the etcd side is ETCD_ENDPOINTS and ETCD_PREFIX", name, truncateValue(v))
	case strings.HasPrefix(v, storeBbolt+":"):
		path := strings.TrimPrefix(v, storeBbolt+":")
		if path == "" {
			return migrateEnd{}, fmt.Errorf("--%s bbolt: names no file, e.g. bbolt:/var/lib/failover-bot/failover-bot.db", name)
		}
		return migrateEnd{path: path}, nil
	}
	return migrateEnd{}, fmt.Errorf("--%s %q: use etcd or bbolt:<file>", name, truncateValue(v))
}

// parseMigrateFlags reads the command line; flag.ErrHelp asks for the usage.
func parseMigrateFlags(args []string) (from, to migrateEnd, err error) {
	set := flag.NewFlagSet("migrate", flag.ContinueOnError)
	// The flag package prints its own error and the defaults on several lines; the command
	// reports the error on one, like every other subcommand.
	set.SetOutput(io.Discard)
	set.Usage = func() {}
	fromFlag := set.String("from", "", "")
	toFlag := set.String("to", "", "")
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return from, to, err
		}
		return from, to, fmt.Errorf("%v; %s", err, strings.SplitN(migrateUsage, "\n", 2)[0])
	}
	if set.NArg() > 0 {
		return from, to, fmt.Errorf("unexpected argument %q; %s", set.Arg(0), strings.SplitN(migrateUsage, "\n", 2)[0])
	}
	if from, err = parseMigrateEnd("from", *fromFlag); err != nil {
		return from, to, err
	}
	if to, err = parseMigrateEnd("to", *toFlag); err != nil {
		return from, to, err
	}
	switch {
	case from.etcd && to.etcd:
		return from, to, errors.New("--from etcd --to etcd is the same store on both sides (ETCD_ENDPOINTS, ETCD_PREFIX): migrate copies between bbolt and etcd")
	case !from.etcd && !to.etcd:
		if same, _ := sameFile(from.path, to.path); same || filepath.Clean(from.path) == filepath.Clean(to.path) {
			return from, to, fmt.Errorf("--from and --to are the same store (%s): migrate copies between bbolt and etcd", from.path)
		}
		return from, to, errors.New("both sides are bbolt files: copy a bbolt store with failover-bot backup <path>; migrate copies between bbolt and etcd")
	}
	return from, to, nil
}

// sameFile reports whether a and b name one existing file.
func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// migrateCommand runs `failover-bot migrate` and returns its exit code.
func migrateCommand(cfg Config, args []string, stdout, stderr io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "failover-bot migrate: %s\n", oneLine(err.Error()))
		return code
	}
	from, to, err := parseMigrateFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, migrateUsage)
		return exitOK
	}
	if err != nil {
		return fail(exitConfig, err)
	}
	if len(cfg.EtcdEndpoints) == 0 {
		return fail(exitConfig, errors.New("configuration: ETCD_ENDPOINTS is required: the etcd side of a migration is ETCD_ENDPOINTS and ETCD_PREFIX, e.g. ETCD_ENDPOINTS=https://etcd1:2379,https://etcd2:2379,https://etcd3:2379"))
	}
	side, err := etcdSideOf(cfg)
	if err != nil {
		return fail(exitConfig, err)
	}
	ctx, stop := commandContext()
	defer stop()
	var lines string
	if to.etcd {
		lines, err = migrateToEtcd(ctx, from.path, side)
	} else {
		lines, err = migrateToBbolt(ctx, side, to.path)
	}
	if err != nil {
		return fail(exitFail, err)
	}
	fmt.Fprint(stdout, lines)
	return exitOK
}

// copied says what a migration copied and checked.
func copied(from, to string, rep store.CopyReport) string {
	return fmt.Sprintf("migrated %s to %s: %s, %s in all, %s; the copy matches the source and its hash chain verifies\n",
		from, to, countOf(rep.Requests, "request"), countOf(rep.Keys, "key"), countOf(int(rep.Events), "audit event"))
}

// countOf is "1 request", "2 requests".
func countOf(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// openBboltSource opens the bbolt file a migration reads, refusing one a running bot holds:
// the bot would go on writing to the file after the copy was taken, and those writes would be
// lost.
func openBboltSource(path string) (*store.Bolt, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no store at %s: %w", path, err)
	}
	st, err := store.Open(path, store.Options{LockTimeout: lockProbeTimeout})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by a running failover-bot: stop the bot first (a migration must not race its writes)", path)
	}
	return st, err
}

// refuseInstances refuses an etcd store on which a bot instance campaigns: every instance,
// leader or standby, holds an election key under the prefix while it runs, and one killed
// holds it until its lease ends (LEADER_TTL).
func refuseInstances(ctx context.Context, st *store.Etcd, side etcdSide) error {
	ctx, cancel := context.WithTimeout(ctx, etcdAdminReadTimeout)
	defer cancel()
	name, err := st.Leader(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", side, err)
	}
	if name != "" {
		return fmt.Errorf("%s is in use by failover-bot instance %s (or one stopped less than LEADER_TTL ago): stop every instance first (a migration must not race their writes)", side, name)
	}
	return nil
}

// migrateToEtcd copies the bbolt file at path into the etcd store, which must be empty.
func migrateToEtcd(ctx context.Context, path string, side etcdSide) (string, error) {
	src, err := openBboltSource(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	// A prefix without a single key is one this command may clear again if the copy fails:
	// everything under it is then the copy's.
	n, err := side.keys(ctx)
	if err != nil {
		return "", err
	}
	dst, err := side.open(ctx)
	if err != nil {
		return "", err
	}
	defer dst.Close()
	if err := refuseInstances(ctx, dst, side); err != nil {
		return "", err
	}
	rep, err := store.Copy(ctx, dst, src)
	if err != nil {
		return "", fmt.Errorf("%s: %w; %s", side, err, removePartialCopy(ctx, dst, side, n == 0, err))
	}
	return copied("bbolt "+path, side.String(), rep) +
		fmt.Sprintf("next: run every instance with STORE=etcd and these ETCD_* settings; %s is unchanged, and no bot may run on it again\n", path), nil
}

// removePartialCopy clears the etcd destination of a failed copy, when it was empty before the
// migration (pristine), so that no bot ever starts on half a store and the migration can simply
// be run again. It says what the operator must know.
func removePartialCopy(ctx context.Context, dst *store.Etcd, side etcdSide, pristine bool, copyErr error) string {
	manual := fmt.Sprintf("delete it (etcdctl del --prefix %s) before migrating again, and start no bot on it", side.cfg.EtcdPrefix)
	switch {
	case !pristine && errors.Is(copyErr, store.ErrInvalid):
		// Refused before writing (the destination is not empty).
		return "nothing was copied"
	case !pristine:
		return "the prefix held keys before the migration, so it was left as it is and may hold a partial copy: " + manual
	}
	// The command's context may be what failed (Ctrl-C): the removal gets its own.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), side.timeout())
	defer cancel()
	if name, err := dst.Leader(cctx); err != nil || name != "" {
		return "a bot instance may have started on the prefix meanwhile, so the partial copy was left: " + manual
	}
	if _, err := dst.Client().Delete(cctx, side.cfg.EtcdPrefix, clientv3.WithPrefix()); err != nil {
		return fmt.Sprintf("removing the partial copy failed (%v): %s", err, manual)
	}
	return "the partial copy was removed, the prefix is empty again"
}

// migrateToBbolt copies the etcd store into a new bbolt file at path. The copy is made in a
// temporary file beside it and linked into place only once it is complete and checked, so a
// failed or interrupted migration never leaves a store under the final name, and an existing
// file is never replaced.
func migrateToBbolt(ctx context.Context, side etcdSide, path string) (string, error) {
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("%s exists: migrate writes a new bbolt file and never replaces one; choose a new path", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := side.mustHoldStore(ctx); err != nil {
		return "", err
	}
	src, err := side.open(ctx)
	if err != nil {
		return "", err
	}
	defer src.Close()
	if err := refuseInstances(ctx, src, side); err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".migrate-*") // mode 0600
	if err != nil {
		return "", err
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // after the link, path keeps the file
	if err := tmp.Close(); err != nil {
		return "", err
	}
	dst, err := store.Open(tmpPath, store.Options{LockTimeout: time.Second})
	if err != nil {
		return "", err
	}
	rep, err := store.Copy(ctx, dst, src)
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", tmpPath, cerr)
	}
	if err != nil {
		return "", fmt.Errorf("%w; nothing was written to %s", err, path)
	}
	// link, unlike rename, fails when path appeared meanwhile instead of replacing it.
	if err := os.Link(tmpPath, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%s appeared during the migration; it was left alone and the copy discarded", path)
		}
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync() // make the new name durable
		d.Close()
		if err != nil {
			return "", fmt.Errorf("%s was written but syncing its directory failed: %w", path, err)
		}
	}
	return copied(side.String(), "bbolt "+path, rep) +
		fmt.Sprintf("next: run one instance with STORE=bbolt DB_PATH=%s; the etcd prefix is unchanged, and no bot may run on it again\n", path), nil
}
