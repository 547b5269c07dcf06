return BertSharp.Cli.BertCli.Build().Parse(args).Invoke();
