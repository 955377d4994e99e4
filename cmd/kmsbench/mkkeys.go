package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

const mkkeysSummary = `Creates -n symmetric keys through the API (CreateKey) with -concurrency
workers and reports the time taken and keys/s. With -ensure, -n is the total
wanted: keys the server already has count, and only the missing ones are
created, so a re-run on a filled database is quick.`

func runMkkeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mkkeys", mkkeysSummary, stderr)
	var api apiFlags
	api.register(fs)
	n := fs.Int("n", 0, "number of keys to create (with -ensure: the total wanted)")
	ensure := fs.Bool("ensure", false, "count existing keys (ListKeys) and create only the missing ones")
	workers := fs.Int("concurrency", 16, "parallel CreateKey `workers`")
	description := fs.String("description", "kmsbench", "description of the new keys")
	record := fs.String("record", "", "append the creation rate to this tab-separated `file`")
	label := fs.String("label", "mkkeys", "`name` of this run in the -record file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n < 1 || *workers < 1 {
		return errors.New("-n and -concurrency must be at least 1")
	}
	client, err := api.newClient(ctx, *workers)
	if err != nil {
		return err
	}
	want := *n
	if *ensure {
		have, err := listKeyIDs(ctx, client, *n)
		if err != nil {
			return err
		}
		want = *n - len(have)
		if want == 0 {
			fmt.Fprintf(stdout, "kmsbench mkkeys: the server already has at least %d keys; nothing to create\n", *n)
			return nil
		}
		fmt.Fprintf(stdout, "kmsbench mkkeys: the server has %d keys; creating %d more\n", len(have), want)
	}
	r := createKeys(ctx, client, want, *workers, *description)
	rate := float64(r.created) / r.elapsed.Seconds()
	fmt.Fprintf(stdout, "kmsbench mkkeys: created %d keys in %.1fs with %d workers: %.1f keys/s, %.2f ms per key; %d failed\n",
		r.created, r.elapsed.Seconds(), *workers, rate, r.elapsed.Seconds()*1000/float64(max(r.created, 1)), r.failed)
	rec := newRecorder(*record, *label)
	if err := errors.Join(rec.metric("keys_created", float64(r.created)), rec.metric("create_keys_per_s", rate)); err != nil {
		return err
	}
	if r.failed > 0 || r.err != nil {
		return fmt.Errorf("%d CreateKey calls failed; first: %w", r.failed, r.err)
	}
	return nil
}
