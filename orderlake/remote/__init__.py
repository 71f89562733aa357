"""Remote operations on a deployed orderlake bundle, through databricks-sdk's WorkspaceClient."""
