package daemon_test

import "os"

var osStat = os.Stat
