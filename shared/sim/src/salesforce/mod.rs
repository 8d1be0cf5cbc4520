//! The Salesforce simulator (not built yet).
