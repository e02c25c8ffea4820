// Command tekton-interop runs Tekton Pipelines' own TEP-0089 code against a real SPIRE
// agent, for tekton-spire's interoperability tests (tests/tekton_interop.rs) and its
// side-by-side benchmark (scripts/bench-tekton.sh). Nothing of Tekton is copied: the
// module pins github.com/tektoncd/pipeline and calls its exported API.
//
//	sign        Tekton's entrypointer (pkg/entrypoint, signing through pkg/spire's
//	            entrypointer client) reads a results directory and writes its termination
//	            message; Tekton's pkg/pod.MakeTaskRunStatus turns that message into the
//	            TaskRun status, which is written as a tekton.dev/v1 TaskRun.
//	verify      Tekton's pkg/spire VerifyTaskRunResults on the results of a TaskRun, or on
//	            the termination message the entrypointer writes for a results directory.
//	message     the termination message the entrypointer writes for a results directory
//	            (signed by Tekton or not): its size and whether it fits in 4,096 bytes.
//	bench-sign  times pkg/spire's entrypointer client signing the same results N times.
//
// Every subcommand prints one JSON object on stdout. Exit status: 0 success (verified),
// 1 rejected or does not fit, 2 bad input or environment.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var code int
	switch os.Args[1] {
	case "sign":
		code = cmdSign(os.Args[2:])
	case "verify":
		code = cmdVerify(os.Args[2:])
	case "message":
		code = cmdMessage(os.Args[2:])
	case "bench-sign":
		code = cmdBenchSign(os.Args[2:])
	default:
		usage()
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tekton-interop sign|verify|message|bench-sign [flags] (-h for a subcommand's flags)")
	os.Exit(2)
}

// emit prints v as one line of JSON on stdout.
func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tekton-interop: cannot encode output: %v\n", err)
		os.Exit(2)
	}
	fmt.Println(string(b))
}

// fail reports bad input or a broken environment (exit status 2).
func fail(format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "tekton-interop: %s\n", msg)
	emit(map[string]any{"error": msg})
	return 2
}
