package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// template is a pod template for the virtual node on the case's backend.
func (e *env) template(labels map[string]string, c v1.Container) v1.PodTemplateSpec {
	meta := e.objectMeta("")
	meta.Name, meta.Namespace, meta.Labels = "", "", labels
	return v1.PodTemplateSpec{ObjectMeta: meta, Spec: e.podSpec(c)}
}

// always makes a template's pods restart whatever their exit, as a Deployment's must.
func always(t v1.PodTemplateSpec) v1.PodTemplateSpec {
	t.Spec.RestartPolicy = v1.RestartPolicyAlways
	return t
}

// A Job whose pod always fails, with backoffLimit 2: the Job controller runs it three times and then marks
// the Job Failed with BackoffLimitExceeded.
func TestJobBackoffLimitRetries(t *testing.T) {
	forEachBackend(t, func(e *env) {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "retried", Namespace: e.ns},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr[int32](2),
				Template:     e.template(nil, sh("main", busybox, "echo attempt; exit 1")),
			},
		}
		if _, err := e.c.batch.Jobs(e.ns).Create(e.ctx, job, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		var j *batchv1.Job
		e.poll(e.finishTimeout+2*time.Minute, "the Job Failed", func() (bool, string) {
			var err error
			if j, err = e.c.batch.Jobs(e.ns).Get(e.ctx, "retried", metav1.GetOptions{}); err != nil {
				return false, err.Error()
			}
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobFailed && c.Status == v1.ConditionTrue {
					return true, ""
				}
			}
			return false, fmt.Sprintf("active=%d failed=%d succeeded=%d conditions=%v", j.Status.Active, j.Status.Failed,
				j.Status.Succeeded, j.Status.Conditions)
		})
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Reason != batchv1.JobReasonBackoffLimitExceeded {
				e.t.Errorf("Job Failed with reason %q, want %s", c.Reason, batchv1.JobReasonBackoffLimitExceeded)
			}
		}
		if j.Status.Failed != 3 || j.Status.Succeeded != 0 {
			e.t.Errorf("Job status failed=%d succeeded=%d, want 3 failed pods (a first run and 2 retries)", j.Status.Failed, j.Status.Succeeded)
		}
		pods, err := e.c.core.Pods(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: "job-name=retried"})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(pods.Items) != 3 {
			e.t.Errorf("%d pods of the Job, want 3", len(pods.Items))
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			cs := containerStatus(p, "main")
			if p.Status.Phase != v1.PodFailed || cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 1 {
				e.t.Errorf("Job pod %s is not Failed with exit code 1: %s", p.Name, describe(p))
			}
		}
	})
}

// A Deployment of 2 replicas becomes available, and scaled to 0 has no pod left.
func TestDeploymentAvailableAndScaledToZero(t *testing.T) {
	forEachBackend(t, func(e *env) {
		labels := map[string]string{"app": "web"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: e.ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: always(e.template(labels, sh("main", busybox, "trap 'exit 0' TERM; while true; do sleep 1; done"))),
			},
		}
		if _, err := e.c.apps.Deployments(e.ns).Create(e.ctx, d, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		e.poll(e.startTimeout+time.Minute, "the Deployment available with 2 replicas", func() (bool, string) {
			d, err := e.c.apps.Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			available := false
			for _, c := range d.Status.Conditions {
				available = available || c.Type == appsv1.DeploymentAvailable && c.Status == v1.ConditionTrue
			}
			return available && d.Status.AvailableReplicas == 2 && d.Status.ReadyReplicas == 2,
				fmt.Sprintf("replicas=%d ready=%d available=%d conditions=%v", d.Status.Replicas, d.Status.ReadyReplicas,
					d.Status.AvailableReplicas, d.Status.Conditions)
		})
		e.podsRunning("app=web", 2)

		scale, err := e.c.apps.Deployments(e.ns).GetScale(e.ctx, "web", metav1.GetOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		scale.Spec.Replicas = 0
		if _, err := e.c.apps.Deployments(e.ns).UpdateScale(e.ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		e.poll(2*time.Minute, "no pod left after scaling to 0", func() (bool, string) {
			pods, err := e.c.core.Pods(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err.Error()
			}
			d, err := e.c.apps.Deployments(e.ns).Get(e.ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return len(pods.Items) == 0 && d.Status.Replicas == 0, fmt.Sprintf("%d pods, status.replicas=%d", len(pods.Items), d.Status.Replicas)
		})
	})
}

// podsRunning waits for n pods to match selector, each running on the virtual node as its backend reports.
func (e *env) podsRunning(selector string, n int) {
	e.t.Helper()
	e.poll(e.startTimeout, fmt.Sprintf("%d pods %s running", n, selector), func() (bool, string) {
		pods, err := e.c.core.Pods(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		ok := len(pods.Items) == n
		var seen []string
		for i := range pods.Items {
			p := &pods.Items[i]
			ok = ok && p.Spec.NodeName == e.c.Node && running("main")(p)
			seen = append(seen, p.Name+": "+describe(p))
		}
		return ok, strings.Join(seen, "; ")
	})
}
