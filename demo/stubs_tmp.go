package demo

import "context"

func runNotifications(ctx context.Context, e *env) error { return nil }
func runLatency(ctx context.Context, e *env) error       { return nil }
