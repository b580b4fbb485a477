"""``python -m pid.api``: serve the API on settings.api_host and settings.api_port."""

from pid.api.app import main

if __name__ == "__main__":
    main()
