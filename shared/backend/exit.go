package backend

// ExitBadConfig is the exit status of a backend whose config is wrong (EX_CONFIG of sysexits.h): restarting
// it cannot help, so the supervisor stops restarting it.
const ExitBadConfig = 78
