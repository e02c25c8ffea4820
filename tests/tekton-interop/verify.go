package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	"github.com/tektoncd/pipeline/pkg/result"
	"github.com/tektoncd/pipeline/pkg/spire"
	spireconfig "github.com/tektoncd/pipeline/pkg/spire/config"
	"github.com/tektoncd/pipeline/pkg/termination"
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"knative.dev/pkg/injection"
)

// taskRunDoc is the part of a TaskRun (tekton.dev/v1 or v1beta1) verification reads.
type taskRunDoc struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Status struct {
		Results     []v1.TaskRunResult `json:"results"`
		TaskResults []v1.TaskRunResult `json:"taskResults"` // v1beta1
	} `json:"status"`
}

// runResultsFromStatus turns status results back into the termination-message results
// Tekton's controller held when it built that status (pkg/pod filterResults): a string
// result keeps its raw text as its value, an array or object result was parsed from its
// JSON text, which is written back.
func runResultsFromStatus(results []v1.TaskRunResult) ([]result.RunResult, error) {
	out := make([]result.RunResult, 0, len(results))
	for _, r := range results {
		var value string
		switch r.Value.Type {
		case v1.ParamTypeArray:
			b, err := json.Marshal(r.Value.ArrayVal)
			if err != nil {
				return nil, err
			}
			value = string(b)
		case v1.ParamTypeObject:
			b, err := json.Marshal(r.Value.ObjectVal)
			if err != nil {
				return nil, err
			}
			value = string(b)
		default:
			value = r.Value.StringVal
		}
		out = append(out, result.RunResult{Key: r.Name, Value: value, ResultType: result.TaskRunResultType})
	}
	return out, nil
}

// waitForIdentity waits until the Workload API issues this process an X.509-SVID: Tekton's
// controller client opens an X509Source (for its mTLS connection to the SPIRE server)
// before it verifies anything, so the verifying process needs an entry of its own.
func waitForIdentity(ctx context.Context, socket string) error {
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(socket))
	if err != nil {
		return err
	}
	defer client.Close()
	for {
		_, err := client.FetchX509SVID(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no X.509-SVID for the verifying process (register an entry for this binary): %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// controllerClient builds Tekton's controller-side SPIRE client the way the controller
// does: through knative injection (pkg/spire registers it in init), then SetConfig.
func controllerClient(ctx context.Context, cfg spireconfig.SpireConfig) (context.Context, spire.ControllerAPIClient) {
	for _, inject := range injection.Default.GetClients() {
		ctx = inject(ctx, &rest.Config{})
	}
	client := spire.GetControllerAPIClient(ctx)
	if client != nil {
		client.SetConfig(cfg)
	}
	return ctx, client
}

func cmdVerify(args []string) int {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	c := addCommon(fs)
	taskrunPath := fs.String("taskrun", "", "a TaskRun (JSON) whose status results to verify")
	namespace := fs.String("namespace", "default", "with -results-dir: the TaskRun's namespace")
	name := fs.String("name", "", "with -results-dir: the TaskRun's name")
	trustDomain := fs.String("trust-domain", "", "Tekton's spire-trust-domain")
	serverAddr := fs.String("server-addr", "127.0.0.1:8081", "Tekton's spire-server-addr (dialled lazily; verification never calls it)")
	repeat := fs.Int("repeat", 0, "after the verdict, verify this many more times and report each duration")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the verifying process's own SVID")
	_ = fs.Parse(args)
	if *trustDomain == "" || *c.socket == "" || (*taskrunPath == "") == (*c.resultsDir == "") {
		return fail("verify needs -trust-domain, -socket (or SPIFFE_ENDPOINT_SOCKET) and one of -taskrun or -results-dir")
	}

	// 1. The results as Tekton's controller holds them: termination-message RunResults.
	var prs []result.RunResult
	tr := &v1beta1.TaskRun{}
	if *taskrunPath != "" {
		b, err := os.ReadFile(*taskrunPath)
		if err != nil {
			return fail("%v", err)
		}
		var doc taskRunDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			return fail("%s: %v", *taskrunPath, err)
		}
		tr.Name, tr.Namespace = doc.Metadata.Name, doc.Metadata.Namespace
		if prs, err = runResultsFromStatus(append(doc.Status.Results, doc.Status.TaskResults...)); err != nil {
			return fail("%v", err)
		}
	} else {
		if *name == "" {
			return fail("-results-dir needs -name")
		}
		declared, err := parseDeclared(*c.results, *c.resultsDir)
		if err != nil {
			return fail("%v", err)
		}
		// The entrypointer without SPIRE: the Task declares the signature results.
		msg, err := runEntrypointer(*c.resultsDir, declared, nil, nil, false)
		if err != nil {
			return fail("Tekton's entrypointer failed: %v", err)
		}
		parsed, err := termination.ParseMessage(zap.NewNop().Sugar(), msg)
		if err != nil {
			return fail("%v", err)
		}
		for _, r := range parsed {
			if r.ResultType == result.TaskRunResultType {
				prs = append(prs, r)
			}
		}
		tr.Name, tr.Namespace = *name, *namespace
	}

	// 2. Tekton's controller client; it needs an SVID of its own first.
	waitCtx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := waitForIdentity(waitCtx, *c.socket); err != nil {
		return fail("%v", err)
	}
	ctx, client := controllerClient(context.Background(), spireconfig.SpireConfig{
		TrustDomain:     *trustDomain,
		SocketPath:      *c.socket,
		ServerAddr:      *serverAddr,
		NodeAliasPrefix: "/tekton-spire-interop/",
	})
	if client == nil {
		return fail("pkg/spire registered no controller client with knative injection")
	}
	defer client.Close()

	// 3. The verdict.
	verr := client.VerifyTaskRunResults(ctx, prs, tr)
	if verr != nil && isSetupError(verr) {
		return fail("Tekton's controller client could not start: %v", verr)
	}
	out := map[string]any{"verified": verr == nil, "results": len(prs)}
	if verr != nil {
		out["error"] = verr.Error()
	}
	var nanos []int64
	for i := 0; i < *repeat; i++ {
		start := time.Now()
		err := client.VerifyTaskRunResults(ctx, prs, tr)
		nanos = append(nanos, time.Since(start).Nanoseconds())
		if (err == nil) != (verr == nil) {
			return fail("verdict changed between runs: %v then %v", verr, err)
		}
	}
	if *repeat > 0 {
		out["nanos"] = nanos
		// Each verification fetches the bundle over the Workload API; time that alone.
		fetches, err := timeBundleFetches(ctx, *c.socket, *repeat)
		if err != nil {
			return fail("%v", err)
		}
		out["bundleFetchNanos"] = fetches
	}
	emit(out)
	if verr != nil {
		return 1
	}
	return 0
}

// isSetupError tells the client's own start-up failures (pkg/spire controller.go dial)
// from verdicts: VerifyTaskRunResults returns both.
func isSetupError(err error) bool {
	for _, prefix := range []string{"config has not been set", "unable to create X509Source", "spire workload API not initialized", "unable to dial SPIRE server"} {
		if strings.HasPrefix(err.Error(), prefix) {
			return true
		}
	}
	return false
}

// timeBundleFetches times n FetchX509Bundles calls, what VerifyTaskRunResults does first.
func timeBundleFetches(ctx context.Context, socket string, n int) ([]int64, error) {
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(socket))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var nanos []int64
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := client.FetchX509Bundles(ctx); err != nil {
			return nil, err
		}
		nanos = append(nanos, time.Since(start).Nanoseconds())
	}
	return nanos, nil
}
