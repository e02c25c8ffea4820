package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"time"

	"github.com/tektoncd/pipeline/pkg/spire"
	spireconfig "github.com/tektoncd/pipeline/pkg/spire/config"
)

// commonFlags are the flags every subcommand that reads results shares.
type commonFlags struct {
	socket     *string
	resultsDir *string
	results    *string
}

func addCommon(fs *flag.FlagSet) commonFlags {
	return commonFlags{
		socket:     fs.String("socket", os.Getenv("SPIFFE_ENDPOINT_SOCKET"), "Workload API endpoint, unix:///path (default $SPIFFE_ENDPOINT_SOCKET)"),
		resultsDir: fs.String("results-dir", "", "the step's results directory"),
		results:    fs.String("results", "", "the Task's declared results, name[:string|array|object],… in declaration order (default: every file, as strings)"),
	}
}

// entrypointerClient is what the entrypoint binary builds with -enable_spire: a config
// holding only the socket path (cmd/entrypoint/spire.go).
func entrypointerClient(socket string) spire.EntrypointerAPIClient {
	return spire.NewEntrypointerAPIClient(&spireconfig.SpireConfig{SocketPath: socket})
}

func cmdSign(args []string) int {
	fs := flag.NewFlagSet("sign", flag.ExitOnError)
	c := addCommon(fs)
	namespace := fs.String("namespace", "default", "the TaskRun's namespace")
	name := fs.String("name", "", "the TaskRun's name")
	uid := fs.String("uid", "", "the TaskRun's UID")
	out := fs.String("out", "", "where to write the TaskRun (tekton.dev/v1 JSON)")
	messageOut := fs.String("message-out", "", "also write the termination message here")
	stepResults := fs.String("step-results", "", "the step's declared step results (steps[].results), name,… (their files are in -results-dir too)")
	_ = fs.Parse(args)
	if *c.resultsDir == "" || *name == "" || *out == "" || *c.socket == "" {
		return fail("sign needs -results-dir, -name, -out and -socket (or SPIFFE_ENDPOINT_SOCKET)")
	}
	declared, err := parseDeclared(*c.results, *c.resultsDir)
	if err != nil {
		return fail("%v", err)
	}
	started := time.Now().Add(-time.Second)
	client := entrypointerClient(*c.socket)
	defer client.Close()
	var stepDeclared []string
	if *stepResults != "" {
		stepDeclared = strings.Split(*stepResults, ",")
	}
	msg, err := runEntrypointer(*c.resultsDir, declared, stepDeclared, client, false)
	if err != nil {
		return fail("Tekton's entrypointer failed: %v", err)
	}
	if *messageOut != "" {
		if err := os.WriteFile(*messageOut, []byte(msg), 0o644); err != nil {
			return fail("%v", err)
		}
	}
	tr, err := taskRunFromMessage(context.Background(), *namespace, *name, *uid, declared, stepDeclared, started, msg)
	if err != nil {
		return fail("Tekton's MakeTaskRunStatus failed: %v", err)
	}
	b, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		return fail("%v", err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return fail("%v", err)
	}
	emit(map[string]any{"taskrun": *out, "messageBytes": len(msg), "results": len(tr.Status.Results)})
	return 0
}

func cmdMessage(args []string) int {
	fs := flag.NewFlagSet("message", flag.ExitOnError)
	c := addCommon(fs)
	sign := fs.Bool("sign", false, "sign with Tekton's entrypointer client (enforce-nonfalsifiability: spire)")
	compress := fs.Bool("compress", false, "compress the termination message (Tekton's CompressTerminationMessage)")
	_ = fs.Parse(args)
	if *c.resultsDir == "" || (*sign && *c.socket == "") {
		return fail("message needs -results-dir, and -socket (or SPIFFE_ENDPOINT_SOCKET) with -sign")
	}
	declared, err := parseDeclared(*c.results, *c.resultsDir)
	if err != nil {
		return fail("%v", err)
	}
	var client spire.EntrypointerAPIClient
	if *sign {
		client = entrypointerClient(*c.socket)
		defer client.Close()
	}
	msg, err := runEntrypointer(*c.resultsDir, declared, nil, client, *compress)
	if err != nil {
		if strings.Contains(err.Error(), "above max allowed size") {
			emit(map[string]any{"fits": false, "error": err.Error()})
			return 1
		}
		return fail("Tekton's entrypointer failed: %v", err)
	}
	emit(map[string]any{"fits": true, "bytes": len(msg)})
	return 0
}

func cmdBenchSign(args []string) int {
	fs := flag.NewFlagSet("bench-sign", flag.ExitOnError)
	c := addCommon(fs)
	runs := fs.Int("runs", 20, "measured runs (one more runs first, unmeasured, to wait for the entry)")
	_ = fs.Parse(args)
	if *c.resultsDir == "" || *c.socket == "" {
		return fail("bench-sign needs -results-dir and -socket (or SPIFFE_ENDPOINT_SOCKET)")
	}
	declared, err := parseDeclared(*c.results, *c.resultsDir)
	if err != nil {
		return fail("%v", err)
	}
	results, err := readResults(*c.resultsDir, declared)
	if err != nil {
		return fail("%v", err)
	}
	// Sign: pkg/spire's entrypointer client alone, a new client per run as each step's
	// entrypointer process has. Entrypointer: the whole epilogue of a step, reading the
	// results, signing and writing the termination message (Entrypointer.Go).
	var signNanos, entrypointerNanos []int64
	for i := 0; i <= *runs; i++ {
		client := entrypointerClient(*c.socket)
		start := time.Now()
		signed, err := client.Sign(context.Background(), results)
		elapsed := time.Since(start)
		client.Close()
		if err != nil {
			return fail("Tekton's entrypointer client failed to sign: %v", err)
		}
		if len(signed) != len(results)+3 {
			return fail("Tekton signed %d results into %d entries", len(results), len(signed))
		}
		if i > 0 { // the first run may wait for the entry to reach the agent
			signNanos = append(signNanos, elapsed.Nanoseconds())
		}
	}
	for i := 0; i < *runs; i++ {
		client := entrypointerClient(*c.socket)
		start := time.Now()
		_, err := runEntrypointer(*c.resultsDir, declared, nil, client, false)
		elapsed := time.Since(start)
		client.Close()
		if err != nil {
			return fail("Tekton's entrypointer failed: %v", err)
		}
		entrypointerNanos = append(entrypointerNanos, elapsed.Nanoseconds())
	}
	emit(map[string]any{"sign": signNanos, "entrypointer": entrypointerNanos})
	return 0
}
