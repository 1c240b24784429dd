package embedded

// TmpMetrics is a temporary diagnostic.
func (s *Store) TmpMetrics() string { return s.db.Metrics().String() }
