package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// apiError is the body of every error answer.
type apiError struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

// statusError is an error answer a handler chose.
type statusError struct {
	status int
	apiError
}

func (e *statusError) Error() string { return e.Code + ": " + e.Description }

func badParameter(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, apiError{Code: "BAD_PARAMETER", Description: fmt.Sprintf(format, args...)}}
}

// handleError writes an error as its JSON body. Faults of the server are
// logged here, once, and answered without their details.
func (a *api) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		se      *statusError
		he      *echo.HTTPError
		status  = http.StatusInternalServerError
		body    = apiError{Code: "SERVER_ERROR", Description: "Internal Server Error"}
		isFault = true
	)
	switch {
	case errors.As(err, &se):
		status, body, isFault = se.status, se.apiError, false
	case errors.As(err, &he) && he.Code < 500:
		status, isFault = he.Code, false
		body = apiError{Code: codeOf(he.Code), Description: fmt.Sprint(he.Message)}
	}
	if isFault {
		a.cfg.Logger.Error("API request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if err := c.JSON(status, body); err != nil {
		a.cfg.Logger.Warn("write error answer", "err", err)
	}
}

func codeOf(status int) string {
	switch status {
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed:
		return "METHOD_NOT_ALLOWED"
	default:
		return "BAD_REQUEST"
	}
}
