//! Links every built-in plugin crate into the binary. A crate whose registrations are never
//! referenced is dropped by the linker, so each one is named here.

use ecomflow_elasticsearch as _;
use ecomflow_kafka as _;
use ecomflow_observe as _;
use ecomflow_sql as _;
use ecomflow_std as _;
