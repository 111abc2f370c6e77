package monitor

// Helpers of the package's own tests, for its external tests (ingestion
// runs against real stores, whose packages import this one).
var (
	At           = at
	AttemptEvent = attemptEvent
	FixtureLines = fixtureLines
)
