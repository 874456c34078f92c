//! GTFS import (filled below).
