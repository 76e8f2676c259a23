package main

// main is a placeholder so cmd/bot builds while its configuration lands first; the lead
// replaces this file with the real wiring (config → store → EM client → bot → run).
func main() {}
