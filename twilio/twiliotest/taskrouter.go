package twiliotest

import (
	"net/http"
	"strings"

	"github.com/voicegate/voicegate/twilio"
)

// taskRouter is the fake's TaskRouter: workspaces, their tasks and the
// workers' reservations. Guarded by Server.mu.
type taskRouter struct {
	workspaces map[string]bool
	tasks      map[string]twilio.TaskResource          // by workspace + "/" + task SID
	res        map[string][]twilio.ReservationResource // by workspace + "/" + worker SID
}

// AddWorkspace makes TaskRouter know a workspace (GET /v1/Workspaces/{Sid}
// answers it; its Workers and Tasks answer 404 until added).
func (s *Server) AddWorkspace(workspaceSID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tr().workspaces[workspaceSID] = true
}

// AddTask adds (or replaces) a task of a workspace added with
// AddWorkspace: attributes is its JSON attributes string, status its
// assignment_status ("" means "assigned").
func (s *Server) AddTask(workspaceSID, taskSID, attributes, status string) {
	if status == "" {
		status = twilio.TaskAssigned
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tr().tasks[workspaceSID+"/"+taskSID] = twilio.TaskResource{SID: taskSID, AssignmentStatus: status, Attributes: attributes, Workspace: workspaceSID}
}

// SetReservation gives a worker a reservation of a task with a status
// ("accepted", "wrapping", "completed", …), replacing the worker's
// reservation of the same task, and returns its SID. The worker is known
// from then on (GET …/Workers/{WorkerSid}/Reservations answers 200).
func (s *Server) SetReservation(workspaceSID, workerSID, taskSID, status string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := workspaceSID + "/" + workerSID
	list := s.tr().res[key]
	for i := range list {
		if list[i].TaskSID == taskSID {
			list[i].Status = status
			return list[i].SID
		}
	}
	r := twilio.ReservationResource{SID: SID("WR"), TaskSID: taskSID, WorkerSID: workerSID, Status: status, Workspace: workspaceSID, AccountSID: s.o.AccountSID}
	s.tr().res[key] = append(list, r)
	return r.SID
}

// tr returns the TaskRouter state, created on first use; s.mu is held.
func (s *Server) tr() *taskRouter {
	if s.taskRouter == nil {
		s.taskRouter = &taskRouter{workspaces: map[string]bool{}, tasks: map[string]twilio.TaskResource{}, res: map[string][]twilio.ReservationResource{}}
	}
	return s.taskRouter
}

// isTaskRouter reports whether parts (the path's segments) name a
// TaskRouter resource the fake serves.
func isTaskRouter(parts []string) bool {
	return len(parts) >= 3 && parts[0] == "v1" && parts[1] == "Workspaces"
}

// taskRouterGet answers GET /v1/Workspaces/{Sid},
// /v1/Workspaces/{Sid}/Tasks/{Sid} and
// /v1/Workspaces/{Sid}/Workers/{Sid}/Reservations[?ReservationStatus=…].
func (s *Server) taskRouterGet(w http.ResponseWriter, r *http.Request, parts []string) {
	notFound := func() {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	}
	s.mu.Lock()
	tr := s.tr()
	ws := parts[2]
	known := tr.workspaces[ws]
	switch {
	case !known:
		s.mu.Unlock()
		notFound()
	case len(parts) == 3:
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"sid": ws, "account_sid": s.o.AccountSID})
	case len(parts) == 5 && parts[3] == "Tasks":
		t, ok := tr.tasks[ws+"/"+parts[4]]
		s.mu.Unlock()
		if !ok {
			notFound()
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"sid": t.SID, "workspace_sid": t.Workspace, "account_sid": s.o.AccountSID,
			"assignment_status": t.AssignmentStatus, "attributes": t.Attributes,
		})
	case len(parts) == 6 && parts[3] == "Workers" && parts[5] == "Reservations":
		list, ok := tr.res[ws+"/"+parts[4]]
		var out []map[string]any
		want := r.URL.Query().Get("ReservationStatus")
		for _, x := range list {
			if want == "" || strings.EqualFold(want, x.Status) {
				out = append(out, map[string]any{
					"sid": x.SID, "task_sid": x.TaskSID, "worker_sid": x.WorkerSID, "workspace_sid": x.Workspace,
					"account_sid": x.AccountSID, "reservation_status": x.Status,
				})
			}
		}
		s.mu.Unlock()
		if !ok {
			notFound()
			return
		}
		if out == nil {
			out = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"reservations": out,
			"meta":         map[string]any{"key": "reservations", "page": 0, "page_size": len(out), "next_page_url": nil},
		})
	default:
		s.mu.Unlock()
		notFound()
	}
}
