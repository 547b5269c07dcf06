return BertSharp.Cli.BertCli.Run(args);
