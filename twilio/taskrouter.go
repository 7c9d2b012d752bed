package twilio

import (
	"context"
	"fmt"
	"net/url"
)

// TaskRouter reservation and task statuses this package reads.
const (
	// ReservationAccepted: the worker accepted the task (it is theirs
	// until they wrap it up).
	ReservationAccepted = "accepted"
	// ReservationWrapping: the worker accepted the task and its work
	// (the call) has ended; the worker is wrapping it up.
	ReservationWrapping = "wrapping"
	// ReservationCompleted: the worker accepted the task and completed
	// it (wrap-up done).
	ReservationCompleted = "completed"
	// TaskAssigned: a worker accepted the task and works on it.
	TaskAssigned = "assigned"
)

// MaxReservationsPage is the largest PageSize the TaskRouter list
// endpoints accept.
const MaxReservationsPage = 1000

// ReservationResource is the part of TaskRouter's Worker Reservation
// resource this package reads (GET
// /v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations, Twilio
// docs "Worker Reservation resource",
// https://www.twilio.com/docs/taskrouter/api/worker-reservation).
type ReservationResource struct {
	SID        string `json:"sid"`        // "WR…"
	TaskSID    string `json:"task_sid"`   // "WT…"
	WorkerSID  string `json:"worker_sid"` // "WK…"
	Status     string `json:"reservation_status"`
	Workspace  string `json:"workspace_sid"` // "WS…"
	AccountSID string `json:"account_sid"`
}

// TaskResource is the part of TaskRouter's Task resource this package
// reads (GET /v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}, Twilio docs "Task
// resource", https://www.twilio.com/docs/taskrouter/api/task).
type TaskResource struct {
	SID string `json:"sid"` // "WT…"
	// AssignmentStatus is pending, reserved, assigned, canceled,
	// completed or wrapping.
	AssignmentStatus string `json:"assignment_status"`
	// Attributes is the task's attributes as the JSON string Twilio
	// sends (only a fetch of one task carries it). A voice task created
	// by <Enqueue> has the customer's call SID as "call_sid" (Twilio
	// error 40142, https://www.twilio.com/docs/api/errors/40142).
	Attributes string `json:"attributes"`
	Workspace  string `json:"workspace_sid"`
}

// WorkerReservations lists a worker's reservations of one status (for
// example ReservationAccepted; "" for all) in a TaskRouter workspace: GET
// https://taskrouter.twilio.com/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations?ReservationStatus=…&PageSize=1000
// (Twilio docs "Worker Reservation resource"; PageSize is at most 1000).
// Only the first page is read: a worker holds far fewer reservations of
// one status than a page. A workspace or worker Twilio does not know is an
// *APIError with Status 404. Idempotent; retried as
// ClientOptions.MaxRetries says.
func (c *Client) WorkerReservations(ctx context.Context, workspaceSID, workerSID, status string) ([]ReservationResource, error) {
	if workspaceSID == "" || workerSID == "" {
		return nil, fmt.Errorf("%w: workspace and worker SIDs are required", ErrInvalidArgument)
	}
	q := url.Values{"PageSize": {fmt.Sprint(MaxReservationsPage)}}
	if status != "" {
		q.Set("ReservationStatus", status)
	}
	u := c.url("taskrouter", "/v1/Workspaces/"+url.PathEscape(workspaceSID)+"/Workers/"+url.PathEscape(workerSID)+"/Reservations?"+q.Encode())
	var out struct {
		Reservations []ReservationResource `json:"reservations"`
	}
	if err := c.getJSON(ctx, u, &out); err != nil {
		return nil, err
	}
	return out.Reservations, nil
}

// Task fetches a task of a TaskRouter workspace, attributes included: GET
// https://taskrouter.twilio.com/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}
// (Twilio docs "Task resource"). A task Twilio does not know is an
// *APIError with Status 404. Idempotent; retried as
// ClientOptions.MaxRetries says.
func (c *Client) Task(ctx context.Context, workspaceSID, taskSID string) (*TaskResource, error) {
	if workspaceSID == "" || taskSID == "" {
		return nil, fmt.Errorf("%w: workspace and task SIDs are required", ErrInvalidArgument)
	}
	out := &TaskResource{}
	u := c.url("taskrouter", "/v1/Workspaces/"+url.PathEscape(workspaceSID)+"/Tasks/"+url.PathEscape(taskSID))
	if err := c.getJSON(ctx, u, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Workspace checks that a TaskRouter workspace exists on the account: GET
// https://taskrouter.twilio.com/v1/Workspaces/{Sid} (Twilio docs
// "Workspace resource"). An unknown workspace is an *APIError with Status
// 404. Idempotent; retried as ClientOptions.MaxRetries says.
func (c *Client) Workspace(ctx context.Context, workspaceSID string) error {
	if workspaceSID == "" {
		return fmt.Errorf("%w: workspace SID is required", ErrInvalidArgument)
	}
	var out struct {
		SID string `json:"sid"`
	}
	return c.getJSON(ctx, c.url("taskrouter", "/v1/Workspaces/"+url.PathEscape(workspaceSID)), &out)
}
