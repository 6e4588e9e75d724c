package backend

// ExitBadConfig is the exit status of a backend whose config is wrong (EX_CONFIG of sysexits.h).
const ExitBadConfig = 78
