package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/entrypoint"
	"github.com/tektoncd/pipeline/pkg/pod"
	"github.com/tektoncd/pipeline/pkg/result"
	"github.com/tektoncd/pipeline/pkg/spire"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// declaredResult is one result of the Task's spec.results.
type declaredResult struct {
	Name string
	Type v1.ResultsType
}

// parseDeclared reads "name[:type],name[:type]…" (type string, array or object; default
// string). With an empty spec every regular file of dir is declared as a string, in
// lexical order.
func parseDeclared(spec, dir string) ([]declaredResult, error) {
	var out []declaredResult
	if spec == "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				out = append(out, declaredResult{Name: e.Name(), Type: v1.ResultsTypeString})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
	for _, item := range strings.Split(spec, ",") {
		name, typ, _ := strings.Cut(item, ":")
		if name == "" {
			return nil, fmt.Errorf("empty result name in %q", spec)
		}
		switch typ {
		case "", "string":
			out = append(out, declaredResult{Name: name, Type: v1.ResultsTypeString})
		case "array":
			out = append(out, declaredResult{Name: name, Type: v1.ResultsTypeArray})
		case "object":
			out = append(out, declaredResult{Name: name, Type: v1.ResultsTypeObject})
		default:
			return nil, fmt.Errorf("result %s: unknown type %q (string, array or object)", name, typ)
		}
	}
	return out, nil
}

func names(declared []declaredResult) []string {
	out := make([]string, len(declared))
	for i, d := range declared {
		out[i] = d.Name
	}
	return out
}

// The step itself already ran (it wrote the results directory): the entrypointer's
// Runner does nothing, no post file is written, and the cancellation file never appears.
type stepDone struct{}

func (stepDone) Run(context.Context, ...string) error { return nil }

type noPostFile struct{}

func (noPostFile) Write(string, string) {}

type noCancellation struct{}

func (noCancellation) Wait(ctx context.Context, _ string, _ bool, _ bool) error {
	<-ctx.Done()
	return entrypoint.ErrContextCanceled
}

// runEntrypointer runs Tekton's real Entrypointer.Go for a step that has written the
// declared results into dir: it reads them (in declaration order), signs them with signer
// when it is not nil (what the entrypointer does under enforce-nonfalsifiability: spire)
// and writes the termination message, which is returned.
//
// The entrypointer exits the process (log.Fatalf) when the final termination message,
// with its StartedAt entry, is longer than 4,096 bytes; that is Tekton's behaviour too.
func runEntrypointer(dir string, declared []declaredResult, stepResults []string, signer spire.EntrypointerAPIClient, compress bool) (string, error) {
	work, err := os.MkdirTemp("", "tekton-interop-step-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	terminationPath := filepath.Join(work, "termination-log")
	e := entrypoint.Entrypointer{
		Command:                    []string{"build"},
		TerminationPath:            terminationPath,
		Waiter:                     noCancellation{},
		Runner:                     stepDone{},
		PostWriter:                 noPostFile{},
		Results:                    names(declared),
		StepResults:                stepResults,
		StepMetadataDir:            filepath.Join(work, "step"),
		ResultsDirectory:           dir,
		ResultExtractionMethod:     entrypoint.ResultExtractionMethodTerminationMessage,
		ArtifactsDirectory:         filepath.Join(work, "artifacts"),
		CompressTerminationMessage: compress,
	}
	if signer != nil {
		e.SpireWorkloadAPI = signer
	}
	if err := e.Go(); err != nil {
		return "", err
	}
	msg, err := os.ReadFile(terminationPath)
	if err != nil {
		return "", err
	}
	return string(msg), nil
}

// readResults reads the declared results from dir as the entrypointer does (declaration
// order, missing files skipped, the raw text as the value).
func readResults(dir string, declared []declaredResult) ([]result.RunResult, error) {
	var out []result.RunResult
	for _, d := range declared {
		text, err := os.ReadFile(filepath.Join(dir, d.Name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, result.RunResult{Key: d.Name, Value: string(text), ResultType: result.TaskRunResultType})
	}
	return out, nil
}

// stepContainer is the pod container of the Task's only step, "build".
const stepContainer = "step-build"

// taskRunFromMessage builds the TaskRun Tekton's controller reports once the pod of a
// one-step Task has succeeded with this termination message: the status comes from
// pkg/pod.MakeTaskRunStatus, the function the TaskRun reconciler calls.
func taskRunFromMessage(ctx context.Context, namespace, name, uid string, declared []declaredResult, stepResults []string, started time.Time, msg string) (*v1.TaskRun, error) {
	step := v1.Step{Name: "build", Image: "builder"}
	for _, r := range stepResults {
		step.Results = append(step.Results, v1.StepResult{Name: r, Type: v1.ResultsTypeString})
	}
	ts := &v1.TaskSpec{Steps: []v1.Step{step}}
	for _, d := range declared {
		ts.Results = append(ts.Results, v1.TaskResult{Name: d.Name, Type: d.Type})
	}
	tr := v1.TaskRun{
		TypeMeta:   metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "TaskRun"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: types.UID(uid)},
		Spec:       v1.TaskRunSpec{TaskRef: &v1.TaskRef{Name: "build"}},
	}
	tr.Status.StartTime = &metav1.Time{Time: started}
	tr.Status.PodName = name + "-pod"
	tr.Status.TaskSpec = ts
	finished := metav1.Now()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: tr.Status.PodName, Namespace: namespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: stepContainer, Image: "builder"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodSucceeded,
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: stepContainer,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode:   0,
					Reason:     "Completed",
					Message:    msg,
					StartedAt:  metav1.Time{Time: started},
					FinishedAt: finished,
				}},
			}},
		},
	}
	// The kube client is only used when results come from sidecar logs, which are off.
	status, err := pod.MakeTaskRunStatus(ctx, zap.NewNop().Sugar(), tr, p, nil, ts)
	if err != nil {
		return nil, err
	}
	tr.Status = status
	return &tr, nil
}
